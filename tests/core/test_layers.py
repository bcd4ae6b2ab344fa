"""The layer rule: a package of osmgap imports only from itself and the packages below it.

Read from the source with ``ast`` (imports inside functions count too), so a shortcut upward
fails here before it becomes a cycle or a surprise for the next reader.
"""
from __future__ import annotations

import ast
from pathlib import Path

import osmgap

ROOT = Path(osmgap.__file__).parent
# Bottom to top. The modules at the package root: errors below everything, cli on top.
LAYERS = ["errors", "core", "sources", "graph", "metrics", "model", "conflate", "gps", "scale",
          "workspace", "export", "maproulette", "jobs", "tools", "cli"]
ROOT_MODULES = {"__init__": "errors", "errors": "errors", "__main__": "cli", "cli": "cli"}


def layer_of(module: str) -> str:
    """``osmgap.conflate.gaps`` -> 'conflate'; ``osmgap`` itself (its version) -> 'errors'."""
    parts = module.split(".")
    if len(parts) == 1:
        return "errors"
    return ROOT_MODULES.get(parts[1], parts[1])


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "osmgap":
            found |= {f"{node.module}.{a.name}" if node.module == "osmgap" else node.module for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "osmgap"}
    return found


def module_name(path: Path) -> str:
    return ".".join(("osmgap", *path.relative_to(ROOT).with_suffix("").parts))


def test_every_package_is_in_a_layer() -> None:
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    modules = {p.stem for p in ROOT.glob("*.py")}
    assert packages <= set(LAYERS), f"packages without a layer: {sorted(packages - set(LAYERS))}"
    assert modules <= set(ROOT_MODULES), f"modules at the root without a layer: {sorted(modules - set(ROOT_MODULES))}"


def test_packages_import_only_downward() -> None:
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        mine = layer_of(module_name(path))
        for target in imports_of(path):
            theirs = layer_of(target) if target != "osmgap.__version__" else "errors"
            if LAYERS.index(theirs) > LAYERS.index(mine):
                upward.append(f"{module_name(path)} ({mine}) imports {target} ({theirs})")
    assert not upward, "imports that climb a layer:\n" + "\n".join(upward)


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself: an import from a higher layer is seen, inside a function too."""
    source = tmp_path / "gaps.py"
    source.write_text("def f():\n    from osmgap.export.josm import write_josm\n")
    (target,) = imports_of(source)
    assert LAYERS.index(layer_of(target)) > LAYERS.index("conflate")
