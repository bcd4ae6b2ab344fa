"""The number validators of the CLI: every sensible value still passes, each bad one is argparse's
one-line error; every verb's defaults pass its own checks."""
from __future__ import annotations

import argparse
from importlib import import_module

import pytest

from osmgap.cli import VERBS, build_parser
from osmgap.tools.options import (
    float_list,
    non_negative_float,
    non_negative_int,
    number,
    positive_float,
    positive_int,
    window_px,
)

GOOD = [
    (positive_float, "12", 12.0), (positive_float, "0.001", 0.001), (positive_float, "1e3", 1000.0),
    (non_negative_float, "0", 0.0), (non_negative_float, "30.5", 30.5),
    (positive_int, "1", 1), (positive_int, " 8 ", 8), (non_negative_int, "0", 0),
    (window_px, "32", 32), (window_px, "512", 512), (window_px, "4096", 4096),
    (number(int, low=0, high=24), "0", 0), (number(int, low=0, high=24), "24", 24),
    (number(int, low=0), str(10**30), 10**30),  # a huge whole number is a number, not an overflow
    (float_list(non_negative_float), "1,3", (1.0, 3.0)), (float_list(non_negative_float), "0, 2.5,", (0.0, 2.5)),
]
BAD = [
    (positive_float, "nan"), (positive_float, "NaN"), (positive_float, "inf"), (positive_float, "-inf"),
    (positive_float, "1e400"), (positive_float, "0"), (positive_float, "-5"), (positive_float, "five"),
    (positive_float, ""), (non_negative_float, "-0.1"), (positive_int, "0"), (positive_int, "1.5"),
    (positive_int, "1e3"), (non_negative_int, "-1"), (window_px, "0"), (window_px, "33"), (window_px, "16"),
    (window_px, "-32"), (number(int, low=0, high=24), "25"), (number(int, low=0, high=24), "-1"),
    (float_list(non_negative_float), "1,nan"), (float_list(non_negative_float), ""),
]


@pytest.mark.parametrize("parse, text, value", GOOD)
def test_sensible_values_pass(parse, text, value):
    assert parse(text) == value


@pytest.mark.parametrize("parse, text", BAD)
def test_bad_values_are_argparse_errors_that_quote_them(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected") as exc:
        parse(text)
    assert repr(text) in str(exc.value) and "\n" not in str(exc.value)


def test_the_description_says_what_is_expected():
    assert window_px.__name__ == "a multiple of 32 >= 32"
    assert number(int, low=0, high=24).__name__ == "a whole number from 0 to 24"
    assert positive_float.__name__ == "a finite number > 0"


def _required(verb: str) -> list[str]:
    return {"diff": ["--aoi", "a", "--out", "o"], "scan": ["--aoi", "a", "--out", "o"],
            "change": ["--aoi", "a", "--before", "b", "--after", "c", "--out", "o"], "train": ["--out", "o"],
            "eval": ["--imagery", "i", "--labels", "l"], "publish": ["--out", "o", "--challenge", "c", "--project", "1"],
            "sync": ["--out", "o"], "report": ["--out", "o"], "run": ["t.toml"], "pretrain": ["--out", "o"]}[verb]


@pytest.mark.parametrize("verb", VERBS)
def test_every_verbs_defaults_pass_its_checks(verb):
    args = build_parser().parse_args([verb, *_required(verb)])
    check = getattr(import_module(f"osmgap.tools.{verb}"), "check", None)
    if check is not None:
        check(args)  # no --model given: nothing to read


def test_argparse_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["diff", "--aoi", "a", "--out", "o", "--tile", "33"])
    assert exc.value.code == 2
    assert capsys.readouterr().err == "osmgap diff: error: argument --tile: expected a multiple of 32 >= 32, not '33'\n"


def test_a_mistyped_option_is_answered_with_the_nearest_ones(capsys):
    """argparse says only "unrecognized arguments"; a newcomer's --imagry needs the right name."""
    from osmgap.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["diff", "--aoi", "sample_aoi/paris-1447", "--imagry", "x.tif", "--tolerence", "3", "--out", "o"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert err.rstrip().endswith("(did you mean --imagery or --tolerance? see --help)"), err
    with pytest.raises(SystemExit):
        main(["diff", "--aoi", "sample_aoi/paris-1447", "--qqqq", "--out", "o"])
    assert capsys.readouterr().err.rstrip().endswith("unrecognized arguments: --qqqq (see --help)")


def test_an_option_of_another_verb_is_answered_with_the_verbs_that_take_it(capsys):
    """``report --name``: "did you mean --name?" answered a right option with itself."""
    from osmgap.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["report", "--out", "o", "--name", "x", "--imagry", "y"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1
    assert err.rstrip().endswith("(--name is an option of diff, scan only; did you mean --imagery? see --help)"), err


def test_the_word_default_names_the_shipped_model(tmp_path, monkeypatch):
    """summary.json calls the shipped model "default", and users type it back (--init default)."""
    from osmgap.model.nets import DEFAULT_MODEL, model_file

    monkeypatch.chdir(tmp_path)
    assert model_file("default") == model_file(None) == DEFAULT_MODEL
    (tmp_path / "default").write_bytes(b"x")  # a file of that name is that file
    assert model_file("default").resolve() == tmp_path / "default"
