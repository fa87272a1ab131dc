"""The order path compiled from its own Python source, and the switch back to that source.

A requote's time is spent in Python-level strategy, risk and tracking code, almost all of it in
cache misses on code and objects a requote touches once every few hundred frames
(``python bench/bench_requote_phases.py``). The build therefore compiles the modules of that path
with Cython from the very ``.py`` files in the repository (pure Python mode, annotations ignored:
the compiled module behaves exactly like its source, it only skips the bytecode interpreter).
The source stays the one readable copy; there is no second implementation to keep in step.
``python bench/run.py --only engine`` compares the two in the same way as the core's twins.

Some of these modules have a ``.pxd`` beside them (Cython's "augmenting" declarations): it turns
the hot classes into extension types whose instance attributes are C slots, so a class's own
methods (``Engine``'s above all) read and write ``self.x`` directly instead of looking it up by
name. Every slot is a plain ``object`` and a class without ``__slots__`` in its source keeps a
``__dict__`` and a ``__weakref__``: the behaviour stays the source's. What it buys: ``python bench/ab_replay.py`` between
a build with and one without them. ``tests/test_compiled.py`` keeps each ``.pxd`` in step with its
source.

``BOTCORE_NO_EXTENSIONS=1`` at run time selects the sources instead of the compiled modules (the
tox ``pure`` env and the benchmarks' pure baselines), as it selects the core's twins. A compiled
module older than its source or its ``.pxd`` (an edited checkout not rebuilt) is never used
either: the source is loaded, with a warning, so a test never runs stale code.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from types import ModuleType

COMPILED_FROM_SOURCE: tuple[str, ...] = (
    "botcore.booksync",
    "botcore.engine",
    "botcore.metrics",
    "botcore.orders",
    "botcore.quoting",
    "botcore_risk_basic.checks",
    "botcore_risk_basic.pnl",
    "botcore_strategy_marketmaker.strategy",
)
"""The order path: what ``setup.py`` (and the two first-party plugins' ``setup.py``) compile."""

STALE_AFTER_S = 2.0
"""A source this much newer than its compiled module was edited after the build (an install
writes both files within moments of each other)."""


def no_extensions() -> bool:
    return os.environ.get("BOTCORE_NO_EXTENSIONS", "") not in ("", "0")


def is_compiled(module: ModuleType) -> bool:
    """True if ``module`` was loaded from a compiled extension rather than its ``.py`` source."""
    origin = getattr(module, "__file__", None) or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


class SourceFirstFinder(importlib.abc.MetaPathFinder):
    """Loads the ``.py`` source of an order-path module instead of its compiled extension when
    extensions are switched off or the extension is older than the source."""

    def __init__(self, names: tuple[str, ...], force_source: bool) -> None:
        self.names = frozenset(names)
        self.force_source = force_source

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)  # type: ignore[arg-type]
        if spec is None or not spec.origin or not spec.origin.endswith(
            tuple(importlib.machinery.EXTENSION_SUFFIXES)
        ):
            return spec
        source = os.path.join(os.path.dirname(spec.origin), fullname.rpartition(".")[2] + ".py")
        if not os.path.exists(source):
            return spec
        if not self.force_source:
            built = os.path.getmtime(spec.origin)
            newer = [f for f in (source, source[:-3] + ".pxd") if _edited_after(f, built)]
            if not newer:
                return spec
            warnings.warn(
                f"{fullname}: the compiled module is older than {newer[0]}; using the source "
                "(rebuild: pip install -e . or pip install ./plugins/...)",
                RuntimeWarning,
                stacklevel=2,
            )
        return importlib.util.spec_from_file_location(fullname, source)


def _edited_after(path: str, built: float) -> bool:
    """``path`` (a source, or its build declarations if it has any) changed after the build."""
    return os.path.exists(path) and os.path.getmtime(path) - built > STALE_AFTER_S


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once); called by ``import botcore``."""
    if not any(isinstance(f, SourceFirstFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, SourceFirstFinder(COMPILED_FROM_SOURCE, no_extensions()))
