"""The order path is compiled from its own sources, and the switch back to the sources works.

Fails if a build silently stopped compiling a module of ``botcore.compiled.COMPILED_FROM_SOURCE``
(the compiled env would then measure and test the source), if the build lists and that tuple
drift apart, if ``BOTCORE_NO_EXTENSIONS=1`` or a stale build could still load a compiled module,
or if a ``.pxd`` declaring the hot classes as extension types drifted from its source.
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import os
import subprocess
import sys
import warnings
import weakref
from decimal import Decimal
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


PLUGIN_OF = {"botcore_risk_basic": "botcore-risk-basic", "botcore_strategy_marketmaker": "botcore-strategy-marketmaker"}
"""The first-party plugins that compile part of the order path: package -> directory under plugins/."""


def test_build_lists_match_the_compiled_tuple() -> None:
    built = [f"botcore.{m}" for m in _list_in(ROOT / "setup.py", "ORDER_PATH_MODULES")]
    for package, plugin in PLUGIN_OF.items():
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


def test_stale_declarations_load_the_source_with_a_warning(fake_build: tuple[Path, Path]) -> None:
    source, ext = fake_build
    pxd = source.with_suffix(".pxd")
    pxd.write_text("cdef class Thing:\n    cdef public object x\n")
    os.utime(source, (1_000, 1_000))
    os.utime(ext, (1_001, 1_001))
    os.utime(pxd, (1_001 + compiled.STALE_AFTER_S + 60, 1_001 + compiled.STALE_AFTER_S + 60))
    with pytest.warns(RuntimeWarning, match=r"older than .*mod\.pxd"):
        spec = SourceFirstFinder(("pkg.mod",), force_source=False).find_spec("pkg.mod")
    assert spec.origin == str(source)  # type: ignore[attr-defined]


# --- the .pxd declarations beside the compiled sources ------------------------------------------


def _source_of(module: str) -> Path:
    package, _, name = module.rpartition(".")
    if package == "botcore":
        return ROOT / "botcore" / f"{name}.py"
    return ROOT / "plugins" / PLUGIN_OF[package] / package / f"{name}.py"


def _declared(pxd: Path) -> dict[str, tuple[tuple[str, ...], set[str], bool]]:
    """class -> (bases, attributes declared as slots, has a __dict__ and a __weakref__), as the
    .pxd says."""
    classes: dict[str, tuple[tuple[str, ...], set[str], set[str]]] = {}
    current = ""
    for line in pxd.read_text().splitlines():
        words = line.split()
        if line.startswith("cdef class "):
            head = line[len("cdef class ") :].rstrip(":")
            current, _, bases = head.partition("(")
            classes[current] = (tuple(b.strip() for b in bases.rstrip(")").split(",") if b.strip()), set(), set())
        elif words[:2] == ["cdef", "public"]:
            classes[current][1].add(words[-1])
        elif words in (["cdef", "dict", "__dict__"], ["cdef", "object", "__weakref__"]):
            classes[current][2].add(words[-1])
    return {c: (b, a, extras == {"__dict__", "__weakref__"}) for c, (b, a, extras) in classes.items()}


def _assigned(source: Path) -> dict[str, tuple[set[str], set[str], bool]]:
    """class -> (attributes its methods assign on ``self``, its method names, has __slots__)."""
    out: dict[str, tuple[set[str], set[str], bool]] = {}
    for node in ast.parse(source.read_text()).body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs: set[str] = set()
        for sub in ast.walk(node):
            targets = sub.targets if isinstance(sub, ast.Assign) else [getattr(sub, "target", None)]
            for target in targets:
                for e in ast.walk(target) if target is not None else ():
                    if isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name) and e.value.id == "self":
                        attrs.add(e.attr)
        methods = {b.name for b in node.body if isinstance(b, ast.FunctionDef)}
        slots = any(
            isinstance(b, ast.Assign) and any(getattr(t, "id", "") == "__slots__" for t in b.targets) for b in node.body
        )
        out[node.name] = (attrs, methods, slots)
    return out


PXD_MODULES = [m for m in COMPILED_FROM_SOURCE if _source_of(m).with_suffix(".pxd").exists()]


def test_the_hot_modules_have_declarations() -> None:
    assert {"botcore.engine", "botcore.orders", "botcore.booksync", "botcore_risk_basic.checks"} <= set(PXD_MODULES)


@pytest.mark.parametrize("module", PXD_MODULES)
def test_declarations_are_in_step_with_the_source(module: str) -> None:
    """Every attribute a declared class sets on ``self`` has a slot (or the class a __dict__), so
    the compiled class never raises an AttributeError its source would not; and a class without
    __slots__ in its source keeps a __dict__ and a __weakref__ (anything else may be set on it,
    and it may be weakly referenced, as the source's)."""
    source = _source_of(module)
    declared = _declared(source.with_suffix(".pxd"))
    assigned = _assigned(source)
    for cls, (bases, slots, has_dict) in declared.items():
        assert cls in assigned, f"{module}.pxd declares {cls}, which {source.name} does not define"
        attrs, methods, source_slots = assigned[cls]
        inherited, dict_from_base = set(), False
        ancestors = list(bases)
        while ancestors:  # every declared ancestor, not only the parents
            base = ancestors.pop()
            inherited |= declared[base][1]
            dict_from_base |= declared[base][2]
            ancestors += declared[base][0]
        with_dict = has_dict or dict_from_base
        missing = attrs - slots - inherited - methods
        assert with_dict or not missing, f"{module}.{cls} sets {sorted(missing)}, not declared in its .pxd"
        assert with_dict or source_slots, f"{module}.{cls} has no __slots__ in its source: it needs a __dict__ and a __weakref__"
        assert not (slots & methods), f"{module}.{cls}: a slot named like a method"


def test_declared_classes_behave_like_their_source() -> None:
    """In both environments: a class with __slots__ refuses an unknown attribute, one without
    takes it and can be weakly referenced; methods can still be replaced per instance (tests and
    plugins do)."""
    from botcore.engine import Engine
    from botcore.model import OrderRequest, Side
    from botcore.orders import OrderTracker, TrackedOrder

    order = TrackedOrder(OrderRequest("BTCUSDT", Side.BUY, Decimal("1"), Decimal("2"), client_order_id="c1"), 0, 5)
    with pytest.raises(AttributeError):
        order.colour = "red"  # type: ignore[attr-defined]
    order.status = order.status  # a declared slot is writable from Python
    tracker = OrderTracker()
    tracker.note = "free-form"  # type: ignore[attr-defined]
    assert tracker.note == "free-form"  # type: ignore[attr-defined]
    engine = Engine({}, gateway=object())
    engine.note = "free-form"  # type: ignore[attr-defined]
    calls: list[str] = []
    engine._housekeeping = lambda: calls.append("replaced")  # type: ignore[method-assign]
    engine.drain()  # an empty queue: the engine's own code calls the replacement
    assert calls == ["replaced"] and engine.note == "free-form"  # type: ignore[attr-defined]
    assert weakref.ref(engine)() is engine and weakref.ref(tracker)() is tracker


def test_the_declared_classes_are_compiled_as_extension_types() -> None:
    """The compiled build really applied the declarations (a heap type is an ordinary class)."""
    from botcore_risk_basic.checks import BasicCheck, OrderRateCheck
    from botcore_strategy_marketmaker.strategy import MarketMaker

    from botcore.booksync import BookSync
    from botcore.engine import Engine
    from botcore.orders import OrderTracker, TrackedOrder

    heap_type = 1 << 9  # Py_TPFLAGS_HEAPTYPE
    classes = (Engine, OrderTracker, TrackedOrder, BookSync, MarketMaker, BasicCheck, OrderRateCheck)
    ordinary = [c.__qualname__ for c in classes if c.__flags__ & heap_type]
    assert ordinary == ([] if not compiled.no_extensions() else [c.__qualname__ for c in classes])
