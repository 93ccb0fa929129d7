"""Packaging: what the code imports is declared in pyproject.toml, and the version comes from it."""

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib

import namedax as nx

ROOT = pathlib.Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement_names(reqs):
    return {re.split(r"[<>=!~ \[;]", r)[0].lower().replace("_", "-") for r in reqs}


def _module_level_imports(path):
    """Top-level packages imported at module level (imports inside functions are optional extras)."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_level_import_is_a_declared_dependency():
    declared = _requirement_names(PYPROJECT["project"]["dependencies"])
    dists = importlib.metadata.packages_distributions()
    missing = {}
    for path in (ROOT / "src" / "namedax").rglob("*.py"):
        for mod in _module_level_imports(path):
            if mod in sys.stdlib_module_names or mod in ("namedax", "__future__"):
                continue
            names = {d.lower().replace("_", "-") for d in dists.get(mod, [mod])}
            if not names & declared:
                missing.setdefault(mod, []).append(str(path.relative_to(ROOT)))
    assert not missing, f"imported but not declared in [project.dependencies]: {missing}"
    assert "opt-einsum" in declared  # ops/_linalg.py


def test_tqdm_is_a_runtime_dependency_and_the_progress_extra_an_empty_alias():
    assert "tqdm" in _requirement_names(PYPROJECT["project"]["dependencies"])
    assert PYPROJECT["project"]["optional-dependencies"]["progress"] == []


def test_version_comes_from_the_package_metadata():
    assert nx.__version__ == importlib.metadata.version("namedax")
