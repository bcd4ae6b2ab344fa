"""Every shipped task file is a valid `osmgap diff` invocation."""
import tomllib

import pytest

from osmgap.cli import build_parser
from tests.conftest import PROJECT

TASKS = sorted((PROJECT / "tasks").glob("*.toml"))


def _argv(diff: dict) -> list[str]:
    argv = ["diff"]
    for key, value in diff.items():
        argv += [f"--{key}", str(value)]
    return argv


@pytest.mark.parametrize("task", TASKS, ids=lambda p: p.name)
def test_task_diff_table_parses(task):
    spec = tomllib.loads(task.read_text())
    args = build_parser().parse_args(_argv(spec["diff"]))
    assert args.verb == "diff" and args.aoi == spec["diff"]["aoi"]
    assert (PROJECT / spec["diff"]["aoi"] / "manifest.json").exists()


def test_there_are_tasks():
    assert TASKS
