"""Hostile numbers, task files and model files: every one is refused before any work starts,
with exit 2, one line on stderr naming the argument or the file, and nothing written (an
earlier output folder stays byte-identical). All in-process: argparse or an early check answers,
no model runs."""
from __future__ import annotations

import json
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from osmgap.cli import main
from osmgap.model.nets import DEFAULT_MODEL
from tests.conftest import PROJECT

PARIS = str(PROJECT / "sample_aoi" / "paris-1447")
EARLIER = b'{"suggestions": 3}\n'  # what an earlier run left in --out


def _base(verb: str, d: Path) -> list[str]:
    """The least each verb needs besides the bad number, all inside ``d``."""
    out = str(d / "out")
    return {
        "diff": ["diff", "--aoi", PARIS, "--out", out],
        "scan": ["scan", "--aoi", PARIS, "--out", out],
        "change": ["change", "--aoi", PARIS, "--before", "b.tif", "--after", "a.tif", "--out", out],
        "train": ["train", "--out", str(d / "out" / "model.pt")],
        "eval": ["eval", "--imagery", "i.tif", "--labels", "l.geojson", "--json", str(d / "out" / "eval.json")],
        "publish": ["publish", "--out", out, "--challenge", "c", "--project", "1"],
        "sync": ["sync", "--out", out],
        "run": ["run", str(d / "task.toml")],
    }[verb]


BAD_NUMBERS = [  # (verb, option, value): the option is named in the one line
    ("diff", "--tolerance", "nan"), ("diff", "--tolerance", "-5"), ("diff", "--tolerance", "inf"),
    ("diff", "--tolerance", "0"), ("diff", "--min-length", "-1"), ("diff", "--min-length", "nan"),
    ("diff", "--tile", "0"), ("diff", "--tile", "33"), ("diff", "--tile", "-32"), ("diff", "--tile", "1e3"),
    ("diff", "--overlap", "-1"), ("diff", "--batch", "0"), ("diff", "--workers", "-1"),
    ("diff", "--workers", "100000"), ("diff", "--xyz-zoom", "99"), ("diff", "--tile-size", "8"),
    ("diff", "--tile-margin", "-4"), ("diff", "--xyz-concurrency", "0"),
    ("scan", "--zoom", "0"), ("scan", "--zoom", "99"), ("scan", "--tolerance", "nan"), ("scan", "--tile", "33"),
    ("scan", "--batch", "-2"),
    ("change", "--tolerance", "-5"), ("change", "--min-length", "nan"), ("change", "--margin", "inf"),
    ("train", "--steps", "0"), ("train", "--steps", "-1"), ("train", "--lr", "nan"), ("train", "--lr", "-0.1"),
    ("train", "--crop", "100"), ("train", "--crop", "0"), ("train", "--resolution", "0"),
    ("train", "--resolution", "nan"), ("train", "--batch", "0"), ("train", "--seed", "-1"),
    ("train", "--eval-every", "0"), ("train", "--folds", "1"), ("train", "--max-minutes", "0"),
    ("eval", "--slack-m", "nan"), ("eval", "--slack-m", "1,-3"), ("eval", "--slack-m", ","),
    ("publish", "--project", "0"), ("publish", "--max-tasks", "0"), ("publish", "--high-priority", "7"),
    ("publish", "--high-routing-impact", "nan"), ("publish", "--timeout", "nan"), ("sync", "--retries", "-1"),
    ("run", "--wait", "nan"),
]


def snapshot(d: Path) -> dict[str, bytes | None]:
    """Every path under ``d`` with its bytes (None: a folder), but an empty lock file beside a
    state: a verb that writes the state takes its lock first (osmgap.workspace.lock), and the file
    stays, empty, beside the state it recorded, for the next run to lock."""
    return {str(p.relative_to(d)): (p.read_bytes() if p.is_file() else None) for p in sorted(d.rglob("*"))
            if not (p.name.endswith(".sqlite.lock") and p.is_file() and not p.stat().st_size)}


def cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """``osmgap ARGV`` in this process: (exit code, stderr); argparse's own exit is caught."""
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    return rc, capsys.readouterr().err


def assert_refused(d: Path, argv: list[str], named: str, capsys: pytest.CaptureFixture) -> str:
    """Exit 2, one line naming ``named``, and ``d`` exactly as it was."""
    before = snapshot(d)
    rc, err = cli(argv, capsys)
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert named in err, err
    assert snapshot(d) == before
    return err


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder holding an earlier run's output that must survive byte for byte."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "summary.json").write_bytes(EARLIER)
    return tmp_path


@pytest.mark.parametrize("verb, option, value", BAD_NUMBERS, ids=lambda v: str(v))
def test_a_bad_number_is_refused_by_argparse(workdir, capsys, verb, option, value):
    err = assert_refused(workdir, [*_base(verb, workdir), option, value], option, capsys)
    assert "error: argument" in err and repr(value) in err


EMPTY_PATHS = [("diff", "--out"), ("scan", "--out"), ("change", "--out"), ("train", "--out"), ("diff", "--state"),
               ("diff", "--work-dir"), ("diff", "--cache-dir"), ("eval", "--json"), ("publish", "--config"),
               ("sync", "--out"), ("run", None), ("diff", "--aoi"), ("diff", "--imagery"), ("diff", "--osm"),
               ("diff", "--model"), ("diff", "--candidates"), ("diff", "--gps"), ("diff", "--xyz"), ("scan", "--osm"),
               ("eval", "--labels"), ("train", "--init"), ("train", "--resume")]


@pytest.mark.parametrize("verb, option", EMPTY_PATHS, ids=lambda v: str(v))
def test_an_empty_path_is_refused_not_read_as_the_working_folder(workdir, capsys, monkeypatch, verb, option):
    """``--out "$OUT"`` with OUT unset: '' is no '.', where a change run wrote its files and
    replaced a map.html of the user's (the change audit); an empty --imagery or --osm is no "not
    given", where a sample AOI's own data stood in."""
    monkeypatch.chdir(workdir)
    argv = _base(verb, workdir)
    if option is None:  # run's task file: the one positional path
        argv[1] = ""
    elif option in argv:
        argv[argv.index(option) + 1] = ""
    else:
        argv += [option, ""]
    err = assert_refused(workdir, argv, option or "task", capsys)
    assert "an empty" in err


@pytest.mark.parametrize("verb, extra", [
    ("diff", ["--overlap", "512"]),
    ("diff", ["--tile", "256", "--overlap", "300"]),
    ("scan", ["--tile", "64", "--overlap", "64"]),
])
def test_an_overlap_as_large_as_the_window_is_refused(workdir, capsys, verb, extra):
    assert_refused(workdir, [*_base(verb, workdir), *extra], "--overlap", capsys)


@pytest.mark.parametrize("line, named", [
    ("tolerance = nan", "--tolerance"),
    ("tolerance = -5.0", "--tolerance"),
    ("min-length = inf", "--min-length"),
    ("tile = 33", "--tile"),
    ("overlap = 512", "--overlap"),
    ("xyz-zoom = 99", "--xyz-zoom"),
    ('batch = "0"', "--batch"),
])
def test_a_bad_number_in_a_task_file_is_refused_before_anything_runs(workdir, capsys, line, named):
    task = workdir / "task.toml"
    task.write_text(f'name = "bad"\n[diff]\naoi = "{PARIS}"\nout = "out"\n{line}\n[publish]\nchallenge = "c"\n'
                    "project = 1\ndry-run = true\n")
    err = assert_refused(workdir, ["run", str(task)], named, capsys)
    assert str(task) in err and "[diff]" in err  # no state, no lock, no output: snapshot unchanged


def test_a_bad_number_in_a_task_files_publish_table_is_refused(workdir, capsys):
    task = workdir / "task.toml"
    task.write_text(f'name = "bad"\n[diff]\naoi = "{PARIS}"\nout = "out"\n[publish]\nchallenge = "c"\n'
                    "project = 1\nretries = nan\n")
    err = assert_refused(workdir, ["run", str(task)], "--retries", capsys)
    assert str(task) in err


# Model files that are not what they claim: (name, writer(path)).
def _random_bytes(p: Path) -> None:
    p.write_bytes(random.Random(14).randbytes(4096))


def _zip(p: Path) -> None:
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("model/data.txt", "not weights")


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _folder(p: Path) -> None:
    p.mkdir()


def _tensor(p: Path) -> None:
    torch.save(torch.zeros(3), p)


def _shipped_with(**meta: object) -> Callable[[Path], None]:
    """The shipped model's weights under other metadata."""
    def write(p: Path) -> None:
        ckpt = torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)
        torch.save({**ckpt, "meta": {**ckpt["meta"], **meta}}, p)
    return write


def _without_weights(p: Path) -> None:
    ckpt = torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)
    torch.save({**ckpt, "state_dict": {}}, p)


BAD_MODELS = {
    "random-bytes": _random_bytes, "zip": _zip, "empty": _empty, "folder": _folder, "tensor": _tensor,
    "no-weights": _without_weights,
    "other-arch": _shipped_with(arch="Unet"), "other-encoder": _shipped_with(encoder="resnet34"),
    "unknown-arch": _shipped_with(arch="NoSuchNet"), "unknown-key": _shipped_with(colour_space="sRGB"),
    "nan-threshold": _shipped_with(threshold=float("nan")), "five-bands": _shipped_with(in_channels=5),
    "zero-std": _shipped_with(std=[0.0, 0.2, 0.2]), "1d-unet": _shipped_with(arch="Unet", decoder="1d"),
}


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    paths = {}
    for name, write in BAD_MODELS.items():
        paths[name] = d / f"{name}.pt"
        write(paths[name])
    return paths


@pytest.mark.parametrize("name", sorted(BAD_MODELS))
def test_a_bad_model_file_is_refused_naming_it(workdir, capsys, bad_models, name):
    model = bad_models[name]
    assert_refused(workdir, [*_base("diff", workdir), "--model", str(model)], str(model), capsys)


@pytest.mark.parametrize("verb", ["scan", "change", "eval"])
def test_every_verb_that_runs_a_model_checks_it_first(workdir, capsys, bad_models, verb):
    model = bad_models["other-arch"]
    err = assert_refused(workdir, [*_base(verb, workdir), "--model", str(model)], str(model), capsys)
    assert "do not fit the Unet/resnet18 network" in err


def test_a_model_that_does_not_exist_is_named(workdir, capsys):
    missing = workdir / "nowhere.pt"
    assert_refused(workdir, [*_base("diff", workdir), "--model", str(missing)], str(missing), capsys)


@pytest.mark.parametrize("extra, named", [
    (["--arch", "Unet", "--init", str(DEFAULT_MODEL)], str(DEFAULT_MODEL)),  # a Linknet into a Unet
    (["--encoder", "resnet34", "--init", str(DEFAULT_MODEL)], str(DEFAULT_MODEL)),
    (["--decoder", "1d", "--init", str(DEFAULT_MODEL)], str(DEFAULT_MODEL)),
    (["--arch", "NoSuchNet"], "--arch"),
    (["--encoder", "resnet1800"], "--encoder"),
    (["--arch", "Unet", "--decoder", "1d"], "--decoder"),
])
def test_train_refuses_an_incompatible_start_before_reading_data(workdir, capsys, extra, named):
    """--data names a dataset that does not exist: reaching the data would be another error."""
    argv = [*_base("train", workdir), "--data", "no-such-dataset", *extra]
    err = assert_refused(workdir, argv, named, capsys)
    assert "no-such-dataset" not in err


@pytest.mark.parametrize("name", ["random-bytes", "unknown-key", "other-encoder"])
def test_train_refuses_a_bad_init_file(workdir, capsys, bad_models, name):
    init = bad_models[name]
    argv = [*_base("train", workdir), "--data", "no-such-dataset", "--init", str(init)]
    assert_refused(workdir, argv, str(init), capsys)


def test_a_bad_model_in_a_task_file_is_refused_before_anything_runs(workdir, capsys, bad_models):
    task = workdir / "task.toml"
    model = bad_models["unknown-key"]
    task.write_text(f'name = "bad"\n[diff]\naoi = "{PARIS}"\nout = "out"\nmodel = "{model}"\n')
    err = assert_refused(workdir, ["run", str(task)], str(model), capsys)
    assert str(task) in err and "colour_space" in err


def _strict(text: str) -> dict:
    """JSON as the standard has it: NaN and Infinity are not JSON."""
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_good_run_writes_strict_json_with_the_offset_and_why(tmp_path, capsys, paris):
    """The sample's own OSM roads as candidates: the offset is measured (0 m) on over 0.4 km of
    confirmed road, and every number in summary.json is a JSON number."""
    out = tmp_path / "out"
    rc, err = cli(["diff", "--aoi", PARIS, "--candidates", str(paris / "osm_roads.geojson"), "--out", str(out)], capsys)
    assert rc == 0, err
    offset = _strict((out / "summary.json").read_text())["offset_m"]
    assert offset["measured"] and offset["applied"] and offset["magnitude_m"] < 0.3
    assert offset["peak"]["evidence_m"] > 400 and offset["reason"] == "cross-correlation peak"
