import os

import pytest

from osmgap.core.atomic import staged_output_dir, write_text_atomic


def test_staged_dir_moves_files_only_on_success(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_output_dir(out) as stage:
            write_text_atomic(stage / "a.txt", "half")
            raise RuntimeError("stage failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []
    with staged_output_dir(out) as stage:
        write_text_atomic(stage / "a.txt", "whole")
    assert (out / "a.txt").read_text() == "whole" and len(list(tmp_path.iterdir())) == 1


def test_atomic_write_replaces_and_is_readable(tmp_path):
    f = tmp_path / "x.json"
    write_text_atomic(f, "1")
    write_text_atomic(f, "2")
    assert f.read_text() == "2" and [p.name for p in tmp_path.iterdir()] == ["x.json"]
    assert os.stat(f).st_mode & 0o044  # group/others may read
