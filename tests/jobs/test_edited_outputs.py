"""A suggestions.osm a mapper saved from JOSM survives the next run into the same folder."""
from __future__ import annotations

import json
from pathlib import Path

from osmgap.cli import main
from osmgap.export.edited import saved_by
from tests.josm import josm_save


def test_a_suggestions_file_saved_from_josm_is_kept_by_the_next_run(tmp_path):
    demo = Path(__file__).resolve().parents[2] / "sample_aoi" / "paris-1447-demo"
    out = tmp_path / "out"
    args = ["diff", "--aoi", str(demo), "--out", str(out)]
    assert main(args) == 0
    josm_save(out / "suggestions.osm", out / "suggestions.osm")  # the mapper's File > Save
    edited = (out / "suggestions.osm").read_bytes()
    assert saved_by(out / "suggestions.osm") == "JOSM"

    assert main([*args, "--osm", str(tmp_path / "missing.osm")]) == 2  # a run that fails changes nothing
    assert (out / "suggestions.osm").read_bytes() == edited and not list(out.glob("suggestions.edited-*"))

    assert main(args) == 0
    kept = list(out.glob("suggestions.edited-*.osm"))
    assert len(kept) == 1 and kept[0].read_bytes() == edited
    assert saved_by(out / "suggestions.osm").startswith("osmgap")
    said = [w for w in json.loads((out / "summary.json").read_text())["warnings"] if "saved by JOSM" in w]
    assert len(said) == 1 and kept[0].name in said[0]

    assert main(args) == 0  # osmgap's own file is replaced as before
    assert list(out.glob("suggestions.edited-*.osm")) == kept
    assert not any("saved by" in w for w in json.loads((out / "summary.json").read_text())["warnings"])
