"""Shared fixtures. Tests are hermetic: no installed plugin leaks into a test unless it asks.

- Every test starts with the plugin env vars (BOTCORE_LOAD/BLOCK/TRACE_PLUGINS) unset.
- ``make_plugin_manager(*plugins)`` builds a checked manager from throwaway plugins only
  (``load_entrypoints=False`` unless a test passes True); ``plugin_manager`` is an empty one.
- ``sample_plugin`` fails (never skips) when tests/sample_plugin is not pip-installed.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Callable, Sequence
from pathlib import Path

import pluggy
import pytest

from botcore.plugins import ENV_BLOCK, ENV_LOAD, ENV_TRACE, get_plugin_manager

SAMPLE_DISTRIBUTION = "botcore-sample-plugin"
SAMPLE_INSTALL_HINT = (
    "the sample plugin distribution is not installed; run `python -m pip install -e tests/sample_plugin` "
    "(tox and CI install it with `pip install --no-deps ./tests/sample_plugin`)"
)

MakePM = Callable[..., pluggy.PluginManager]


@pytest.fixture(autouse=True)
def _clean_plugin_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (ENV_LOAD, ENV_BLOCK, ENV_TRACE):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def make_plugin_manager() -> MakePM:
    """``make_plugin_manager(*plugins, load_entrypoints=False, plugins_dir=None)``."""

    def make(
        *plugins: object,
        load_entrypoints: bool = False,
        plugins_dir: str | Path | Sequence[str | Path] | None = None,
    ) -> pluggy.PluginManager:
        return get_plugin_manager(load_entrypoints=load_entrypoints, plugins_dir=plugins_dir, extra=plugins)

    return make


@pytest.fixture
def plugin_manager(make_plugin_manager: MakePM) -> pluggy.PluginManager:
    """A checked plugin manager with botcore's hook specs and no plugins."""
    return make_plugin_manager()


@pytest.fixture
def sample_plugin() -> metadata.Distribution:
    """The installed ``botcore-sample-plugin`` distribution (the test fails if it is missing)."""
    try:
        dist = metadata.distribution(SAMPLE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.fail(SAMPLE_INSTALL_HINT, pytrace=False)
    if not any(ep.group == "botcore" and ep.name == "sample" for ep in dist.entry_points):
        pytest.fail(f"{SAMPLE_DISTRIBUTION} is installed without its entry point; {SAMPLE_INSTALL_HINT}")
    return dist
