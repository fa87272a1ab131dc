"""The order path is compiled from its own sources, and the switch back to the sources works.

Fails if a build silently stopped compiling a module of ``botcore.compiled.COMPILED_FROM_SOURCE``
(the compiled env would then measure and test the source), if the build lists and that tuple
drift apart, or if ``BOTCORE_NO_EXTENSIONS=1`` or a stale build could still load a compiled module.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from botcore import compiled
from botcore.compiled import COMPILED_FROM_SOURCE, SourceFirstFinder, is_compiled

ROOT = Path(__file__).resolve().parent.parent
SO = importlib.machinery.EXTENSION_SUFFIXES[0]


def _list_in(setup_py: Path, name: str) -> list[str]:
    for node in ast.parse(setup_py.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise AssertionError(f"{name} not found in {setup_py}")


def test_build_lists_match_the_compiled_tuple() -> None:
    built = [f"botcore.{m}" for m in _list_in(ROOT / "setup.py", "ORDER_PATH_MODULES")]
    for plugin, package in (
        ("botcore-risk-basic", "botcore_risk_basic"),
        ("botcore-strategy-marketmaker", "botcore_strategy_marketmaker"),
    ):
        built += [f"{package}.{m}" for m in _list_in(ROOT / "plugins" / plugin / "setup.py", "MODULES")]
    assert sorted(built) == sorted(COMPILED_FROM_SOURCE)


def test_loaded_order_path_matches_the_environment() -> None:
    modules = [importlib.import_module(name) for name in COMPILED_FROM_SOURCE]
    if compiled.no_extensions():
        assert [m.__name__ for m in modules if is_compiled(m)] == []
    else:
        assert [m.__name__ for m in modules if not is_compiled(m)] == []


def test_no_extensions_env_loads_the_sources() -> None:
    code = (
        "import importlib, botcore.compiled as c\n"
        "print(sum(c.is_compiled(importlib.import_module(n)) for n in c.COMPILED_FROM_SOURCE))"
    )
    env = {**os.environ, "BOTCORE_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """``pkg/mod.py`` beside a file named like its compiled extension; the path finder is made to
    answer with the extension (no compiler needed)."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    source = pkg / "mod.py"
    source.write_text("VALUE = 'source'\n")
    ext = pkg / f"mod{SO}"
    ext.write_bytes(b"not really an extension")

    def find_spec(fullname: str, path: object = None, target: object = None) -> object:
        return importlib.util.spec_from_file_location(
            fullname, ext, loader=importlib.machinery.ExtensionFileLoader(fullname, str(ext))
        )

    monkeypatch.setattr(importlib.machinery.PathFinder, "find_spec", staticmethod(find_spec))
    return source, ext


def test_fresh_build_is_used(fake_build: tuple[Path, Path]) -> None:
    source, ext = fake_build
    os.utime(source, (1_000, 1_000))
    os.utime(ext, (1_001, 1_001))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = SourceFirstFinder(("pkg.mod",), force_source=False).find_spec("pkg.mod")
    assert spec.origin == str(ext)  # type: ignore[attr-defined]


def test_stale_build_loads_the_source_with_a_warning(fake_build: tuple[Path, Path]) -> None:
    source, ext = fake_build
    os.utime(ext, (1_000, 1_000))
    os.utime(source, (1_000 + compiled.STALE_AFTER_S + 60, 1_000 + compiled.STALE_AFTER_S + 60))
    with pytest.warns(RuntimeWarning, match="older than"):
        spec = SourceFirstFinder(("pkg.mod",), force_source=False).find_spec("pkg.mod")
    assert spec.origin == str(source)  # type: ignore[attr-defined]


def test_forced_source_and_unlisted_modules(fake_build: tuple[Path, Path]) -> None:
    source, ext = fake_build
    os.utime(source, (1_000, 1_000))
    os.utime(ext, (2_000, 2_000))
    finder = SourceFirstFinder(("pkg.mod",), force_source=True)
    assert finder.find_spec("pkg.mod").origin == str(source)  # type: ignore[attr-defined]
    assert finder.find_spec("pkg.other") is None  # not on the list: the normal import machinery
