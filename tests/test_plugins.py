"""The plugin manager: discovery, env vars, checks, registries and the typed facade."""

from __future__ import annotations

import inspect
import logging
import re
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pluggy
import pytest

from botcore import hookimpl, hookspecs
from botcore.config import config_from_text, validate_against_registry
from botcore.model import OrderRequest, Side
from botcore.plugins import (
    ENV_BLOCK,
    ENV_LOAD,
    ENV_TRACE,
    HANDOFF_PLUGIN,
    Hooks,
    PluginError,
    collect_registry,
    get_plugin_manager,
    list_plugins,
)

REPO = Path(__file__).resolve().parents[1]
SPEC_NAMES = sorted(n for n in dir(hookspecs) if n.startswith("botcore_"))


def _order(qty: str = "1") -> OrderRequest:
    return OrderRequest(symbol="BTCUSDT", side=Side.BUY, qty=Decimal(qty), price=Decimal("100"))


# ---------------------------------------------------------------------------------------------
# Hook specs are the manual: every one documented
# ---------------------------------------------------------------------------------------------


def _doc_problems(fn: Any) -> list[str]:
    opts = getattr(fn, "botcore_spec", None) or {}
    doc = inspect.getdoc(fn) or ""
    problems = []
    if not doc.strip() or not doc.strip().splitlines()[0].strip():
        problems.append("no one-line summary")
    params = list(inspect.signature(fn).parameters)
    for p in params:
        if f":param {p}:" not in doc:
            problems.append(f"parameter {p!r} undocumented")
    for p in re.findall(r":param (\w+):", doc):
        if p not in params:
            problems.append(f":param {p}: documents no parameter")
    if opts.get("firstresult") and "Stops at first non-None result" not in doc:
        problems.append("firstresult hook does not say 'Stops at first non-None result'")
    return problems


def test_spec_checker_catches_an_undocumented_hook() -> None:
    spec = pluggy.HookspecMarker("botcore")

    @spec(firstresult=True)
    def botcore_bad(order: Any, context: Any) -> None:
        """Does something.

        :param order: documented.
        :param ghost: not a parameter.
        """

    assert _doc_problems(botcore_bad) == [
        "parameter 'context' undocumented",
        ":param ghost: documents no parameter",
        "firstresult hook does not say 'Stops at first non-None result'",
    ]


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_hookspec_is_documented(name: str) -> None:
    fn = getattr(hookspecs, name)
    assert getattr(fn, "botcore_spec", None) is not None, f"{name} is not a hookspec"
    assert _doc_problems(fn) == []


def test_facade_has_one_method_per_hook_with_the_spec_arguments() -> None:
    assert len(SPEC_NAMES) >= 10
    for name in SPEC_NAMES:
        method = getattr(Hooks, name.removeprefix("botcore_"), None)
        assert method is not None, f"Hooks lacks a method for {name}"
        spec_params = list(inspect.signature(getattr(hookspecs, name)).parameters)
        method_params = list(inspect.signature(method).parameters)[1:]
        assert method_params[: len(spec_params)] == spec_params, name


# ---------------------------------------------------------------------------------------------
# Discovery through entry points (a separately pip-installed distribution)
# ---------------------------------------------------------------------------------------------


def test_sample_plugin_is_discovered_through_its_entry_point(sample_plugin: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv(ENV_LOAD, "botcore-sample-plugin")
    pm = get_plugin_manager()
    import botcore_sample_plugin

    assert pm.get_plugin("sample") is botcore_sample_plugin
    [info] = list_plugins(pm)
    assert info["name"] == "sample"
    assert info["distribution"] == "botcore-sample-plugin"
    assert info["version"] == sample_plugin.version
    assert info["source"] == "entrypoint"
    assert info["hooks"] == [
        "botcore_register_commands",
        "botcore_register_risk_checks",
        "botcore_register_strategies",
    ]
    registry = collect_registry(pm)
    assert registry.strategies["sample-hold"] is botcore_sample_plugin.HoldStrategy
    assert registry.risk_checks["sample-max-qty"] is botcore_sample_plugin.MaxQty
    assert "sample-hello" in registry.commands
    assert registry.providers["strategies"]["sample-hold"] == "sample"


def test_allow_list_accepts_entry_point_names_too(sample_plugin: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv(ENV_LOAD, " sample , ")
    assert get_plugin_manager().get_plugin("sample") is not None


def test_empty_allow_list_loads_no_entry_points(sample_plugin: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv(ENV_LOAD, "")
    pm = get_plugin_manager()
    assert [p["name"] for p in list_plugins(pm, all=True)] == [HANDOFF_PLUGIN]


def test_block_list_wins_over_allow_list(sample_plugin: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv(ENV_LOAD, "botcore-sample-plugin")
    monkeypatch.setenv(ENV_BLOCK, "sample")
    pm = get_plugin_manager()
    assert pm.get_plugin("sample") is None
    assert list_plugins(pm) == []


def test_allow_list_naming_an_uninstalled_plugin_is_an_error(monkeypatch: Any) -> None:
    monkeypatch.setenv(ENV_LOAD, "botcore-no-such-plugin")
    with pytest.raises(PluginError, match="botcore-no-such-plugin.*not an installed botcore plugin"):
        get_plugin_manager()


def test_hermetic_fixture_does_not_load_installed_plugins(sample_plugin: Any, plugin_manager: Any) -> None:
    assert plugin_manager.get_plugin("sample") is None
    assert list_plugins(plugin_manager) == []
    assert collect_registry(plugin_manager).strategies == {}


def _fake_distribution(root: Path, dist: str, version: str, entry_points: dict[str, str]) -> None:
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[botcore]\n{eps}")


def test_entry_point_that_fails_to_import_names_plugin_and_distribution(
    tmp_path: Path, monkeypatch: Any
) -> None:
    _fake_distribution(tmp_path, "botcore-broken", "9.9", {"broken": "botcore_broken_mod"})
    (tmp_path / "botcore_broken_mod.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENV_LOAD, "botcore-broken")
    with pytest.raises(PluginError) as info:
        get_plugin_manager()
    message = str(info.value)
    assert "'broken'" in message and "botcore-broken 9.9" in message and "boom at import" in message
    assert f"{ENV_BLOCK}=broken" in message
    monkeypatch.setenv(ENV_BLOCK, "botcore-broken")  # blocking by distribution name skips it
    assert get_plugin_manager().get_plugin("broken") is None


def test_two_distributions_declaring_the_same_entry_point_name_is_an_error(
    tmp_path: Path, monkeypatch: Any
) -> None:
    _fake_distribution(tmp_path, "botcore-one", "1.0", {"dup": "botcore_dup_one"})
    _fake_distribution(tmp_path, "botcore-two", "2.0", {"dup": "botcore_dup_two"})
    (tmp_path / "botcore_dup_one.py").write_text("")
    (tmp_path / "botcore_dup_two.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(ENV_LOAD, "botcore-one,botcore-two")
    with pytest.raises(PluginError, match=r"'dup'.*botcore-(one|two) and botcore-(one|two)"):
        get_plugin_manager()


# ---------------------------------------------------------------------------------------------
# Loose files and checks
# ---------------------------------------------------------------------------------------------

LOOSE = """
from botcore import hookimpl

class Echo:
    def __init__(self, name, params, instruments):
        self.name = name

@hookimpl
def botcore_register_strategies(register):
    register("loose-echo", Echo)
"""


def test_loose_file_plugins_load_from_plugins_dir(tmp_path: Path, make_plugin_manager: Any) -> None:
    (tmp_path / "my_loose_plugin.py").write_text(LOOSE)
    (tmp_path / "notes.txt").write_text("not a plugin")
    pm = make_plugin_manager(plugins_dir=tmp_path)
    [info] = list_plugins(pm)
    assert info == {
        "name": "my_loose_plugin",
        "distribution": None,
        "version": None,
        "source": "file",
        "location": str(tmp_path / "my_loose_plugin.py"),
        "hooks": ["botcore_register_strategies"],
    }
    assert "loose-echo" in collect_registry(pm).strategies
    assert "my_loose_plugin" not in sys.modules


def test_several_plugin_dirs_and_blocking_a_loose_file(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "first.py").write_text(LOOSE)
    (tmp_path / "b" / "second.py").write_text(LOOSE.replace("loose-echo", "loose-two"))
    pm = get_plugin_manager(load_entrypoints=False, plugins_dir=[tmp_path / "a", tmp_path / "b"])
    assert set(collect_registry(pm).strategies) == {"loose-echo", "loose-two"}
    monkeypatch.setenv(ENV_BLOCK, "second")
    pm = get_plugin_manager(load_entrypoints=False, plugins_dir=[tmp_path / "a", tmp_path / "b"])
    assert set(collect_registry(pm).strategies) == {"loose-echo"}


def test_loose_file_import_error_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import botcore_does_not_exist\n")
    with pytest.raises(PluginError, match=r"bad\.py.*failed to import.*botcore_does_not_exist"):
        get_plugin_manager(load_entrypoints=False, plugins_dir=tmp_path)
    with pytest.raises(PluginError, match="does not exist"):
        get_plugin_manager(load_entrypoints=False, plugins_dir=tmp_path / "nope")


def test_misspelled_hook_stops_start_up_naming_plugin_and_hook(tmp_path: Path) -> None:
    (tmp_path / "typo_plugin.py").write_text(
        "from botcore import hookimpl\n\n@hookimpl\ndef botcore_register_strategys(register):\n    pass\n"
    )
    with pytest.raises(PluginError) as info:
        get_plugin_manager(load_entrypoints=False, plugins_dir=tmp_path)
    message = str(info.value)
    assert "'typo_plugin'" in message
    assert "unknown hook 'botcore_register_strategys'" in message
    assert "did you mean 'botcore_register_strategies'" in message


def test_optional_hooks_for_other_versions_are_allowed(make_plugin_manager: Any) -> None:
    class Future:
        @hookimpl(optionalhook=True)
        def botcore_from_a_later_version(self) -> None: ...

    make_plugin_manager(Future())


def test_hook_function_without_marker_is_refused(make_plugin_manager: Any) -> None:
    class Forgot:
        def botcore_register_strategies(self, register: Any) -> None: ...

        def botcore_helper_unrelated(self) -> None: ...

    with pytest.raises(
        PluginError, match="botcore_register_strategies.*not decorated with @botcore.hookimpl"
    ):
        make_plugin_manager(Forgot())


def test_hookimpl_with_an_argument_the_spec_lacks_is_refused(make_plugin_manager: Any) -> None:
    class Wrong:
        @hookimpl
        def botcore_order_check(self, order: Any, ctx: Any) -> None: ...

    with pytest.raises(PluginError, match=r"(?s)'Wrong-.*'botcore_order_check'.*ctx"):
        make_plugin_manager(Wrong())


def test_plugin_name_clash_between_file_and_extra(tmp_path: Path) -> None:
    import types

    (tmp_path / "same.py").write_text(LOOSE)
    module = types.ModuleType("same")
    with pytest.raises(PluginError, match="'same' is used twice"):
        get_plugin_manager(load_entrypoints=False, plugins_dir=tmp_path, extra=[module])


def test_tracing_logs_hook_calls(monkeypatch: Any, caplog: Any, make_plugin_manager: Any) -> None:
    monkeypatch.setenv(ENV_TRACE, "1")

    class Veto:
        @hookimpl
        def botcore_order_check(self, order: Any, context: Any) -> str:
            return "traced-veto"

    hooks = Hooks(make_plugin_manager(Veto()))
    with caplog.at_level(logging.INFO, logger="botcore.plugins.trace"):
        hooks.order_check(_order(), None)
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "botcore.plugins.trace")
    assert "botcore_order_check" in text and "traced-veto" in text


def test_no_tracing_by_default(caplog: Any, make_plugin_manager: Any) -> None:
    hooks = Hooks(make_plugin_manager())
    with caplog.at_level(logging.DEBUG):
        hooks.order_check(_order(), None)
    assert not [r for r in caplog.records if r.name == "botcore.plugins.trace"]


# ---------------------------------------------------------------------------------------------
# Per-event hooks through the facade
# ---------------------------------------------------------------------------------------------


def test_order_check_veto_stops_at_first_reason(make_plugin_manager: Any) -> None:
    calls: list[str] = []

    class Allow:
        @hookimpl(tryfirst=True)
        def botcore_order_check(self, order: OrderRequest, context: Any) -> None:
            calls.append("allow")

    class Veto:
        @hookimpl
        def botcore_order_check(self, order: OrderRequest, context: Any) -> str | None:
            calls.append("veto")
            return "too big" if order.qty > 1 else None

    class Late:
        @hookimpl(trylast=True)
        def botcore_order_check(self, order: OrderRequest, context: Any) -> str:
            calls.append("late")
            return "late veto"

    hooks = Hooks(make_plugin_manager(Allow(), Veto(), Late()))
    assert hooks.order_check(_order("5"), None) == "too big"
    assert calls == ["allow", "veto"]
    calls.clear()
    assert hooks.order_check(_order("1"), None) == "late veto"
    assert calls == ["allow", "veto", "late"]
    assert Hooks(make_plugin_manager(Allow())).order_check(_order("5"), None) is None


def test_order_submit_runs_the_handoff_inside_wrappers_after_plain_impls(make_plugin_manager: Any) -> None:
    events: list[str] = []

    class Audit:
        @hookimpl(wrapper=True)
        def botcore_order_submit(self, order: OrderRequest) -> Any:
            events.append("wrapper-before")
            try:
                return (yield)
            finally:
                events.append("wrapper-after")

    class Plain:
        @hookimpl
        def botcore_order_submit(self, order: OrderRequest) -> None:
            events.append("plain")

    hooks = Hooks(make_plugin_manager(Audit(), Plain()))

    def handoff(order: OrderRequest) -> str:
        events.append("handoff")
        return f"sent {order.qty}"

    assert hooks.order_submit(_order("2"), handoff) == "sent 2"
    assert events == ["wrapper-before", "plain", "handoff", "wrapper-after"]

    events.clear()

    def failing(order: OrderRequest) -> str:
        raise ConnectionError("gateway down")

    with pytest.raises(ConnectionError):
        hooks.order_submit(_order(), failing)
    assert events == ["wrapper-before", "plain", "wrapper-after"]
    events.clear()
    hooks.order_submitted(_order())  # no implementation: a no-op, and the handoff is not re-run
    assert events == []


def test_facade_on_a_plain_pluggy_manager_registers_the_handoff() -> None:
    pm = pluggy.PluginManager("botcore")
    pm.add_hookspecs(hookspecs)
    hooks = Hooks(pm)
    assert hooks.order_submit(_order(), lambda o: 42) == 42
    assert Hooks(pm).order_submit(_order(), lambda o: 43) == 43  # idempotent


def test_lifecycle_and_event_hooks_reach_plugins(make_plugin_manager: Any) -> None:
    seen: list[tuple[str, Any]] = []

    class Recorder:
        @hookimpl
        def botcore_start_venue(self, config: Any) -> str:
            return f"venue for {config}"

        @hookimpl
        def botcore_startup(self, engine: Any) -> None:
            seen.append(("startup", engine))

        @hookimpl
        def botcore_shutdown(self, engine: Any, reason: str) -> None:
            seen.append(("shutdown", reason))

        @hookimpl
        def botcore_trust_changed(self, stream: str, trusted: bool, reason: str) -> None:
            seen.append(("trust", (stream, trusted, reason)))

        @hookimpl
        def botcore_reconcile_report(self, job: str, drifts: Any) -> None:
            seen.append(("reconcile", (job, list(drifts))))

        @hookimpl
        def botcore_quotes_decided(self, strategy: str, symbol: str, quotes: Any) -> None:
            seen.append(("quotes", (strategy, symbol)))

    hooks = Hooks(make_plugin_manager(Recorder()))
    assert hooks.start_venue("cfg") == "venue for cfg"
    hooks.startup("E")
    hooks.trust_changed("market:BTCUSDT", False, "sequence gap")
    hooks.reconcile_report("rec", [])
    hooks.quotes_decided("mm", "BTCUSDT", [])
    hooks.shutdown("E", "SIGTERM")
    assert seen == [
        ("startup", "E"),
        ("trust", ("market:BTCUSDT", False, "sequence gap")),
        ("reconcile", ("rec", [])),
        ("quotes", ("mm", "BTCUSDT")),
        ("shutdown", "SIGTERM"),
    ]
    assert Hooks(make_plugin_manager()).start_venue("cfg") is None


# ---------------------------------------------------------------------------------------------
# Registries: duplicates and overrides
# ---------------------------------------------------------------------------------------------


def _strategy_plugin(name: str, factory: Any, *, trylast: bool = False) -> type:
    class P:
        @hookimpl(trylast=trylast)
        def botcore_register_strategies(self, register: Any) -> None:
            register(name, factory)

    P.__name__ = P.__qualname__ = f"P_{id(factory):x}"
    return P


def _named(pm_plugins: list[tuple[str, object]]) -> pluggy.PluginManager:
    pm = get_plugin_manager(load_entrypoints=False)
    for name, plugin in pm_plugins:
        pm.register(plugin, name=name)
    return pm


def test_duplicate_names_from_two_plugins_name_both() -> None:
    pm = _named([("alpha", _strategy_plugin("mm", dict)()), ("beta", _strategy_plugin("mm", list)())])
    with pytest.raises(PluginError) as info:
        collect_registry(pm)
    assert "strategy 'mm'" in str(info.value)
    assert "'alpha'" in str(info.value) and "'beta'" in str(info.value)


@pytest.mark.parametrize("default_first", [True, False])
def test_installed_plugin_overrides_a_trylast_default(default_first: bool) -> None:
    default = ("builtin", _strategy_plugin("mm", dict, trylast=True)())
    custom = ("custom", _strategy_plugin("mm", list)())
    pm = _named([default, custom] if default_first else [custom, default])
    registry = collect_registry(pm)
    assert registry.strategies["mm"] is list
    assert registry.providers["strategies"]["mm"] == "custom"


def test_two_defaults_for_one_name_are_an_error() -> None:
    pm = _named(
        [
            ("one", _strategy_plugin("mm", dict, trylast=True)()),
            ("two", _strategy_plugin("mm", list, trylast=True)()),
        ]
    )
    with pytest.raises(PluginError, match="'mm' is registered by both"):
        collect_registry(pm)


def test_bad_registrations_are_reported_with_the_plugin(make_plugin_manager: Any) -> None:
    class Twice:
        @hookimpl
        def botcore_register_jobs(self, register: Any) -> None:
            register("rec", print)
            register("rec", print)

    class NotCallable:
        @hookimpl
        def botcore_register_exchanges(self, register: Any) -> None:
            register("x", "not a factory")

    class Raises:
        @hookimpl
        def botcore_register_risk_checks(self, register: Any) -> None:
            raise KeyError("oops")

    class BadName:
        @hookimpl
        def botcore_register_commands(self, register: Any) -> None:
            register("", print)

    cases = [
        (Twice, "job 'rec' is registered by .* twice"),
        (NotCallable, "non-callable"),
        (Raises, "failed in botcore_register_risk_checks: KeyError"),
        (BadName, "bad name"),
    ]
    for plugin, pattern in cases:
        with pytest.raises(PluginError, match=pattern):
            collect_registry(make_plugin_manager(plugin()))


def test_list_plugins_hides_internal_plugins_unless_all(make_plugin_manager: Any) -> None:
    class Extra:
        @hookimpl
        def botcore_order_filled(self, fill: Any) -> None: ...

    pm = make_plugin_manager(Extra())
    names = [p["name"] for p in list_plugins(pm)]
    assert names == [p["name"] for p in list_plugins(pm) if p["source"] == "extra"] and len(names) == 1
    assert HANDOFF_PLUGIN in [p["name"] for p in list_plugins(pm, all=True)]


# ---------------------------------------------------------------------------------------------
# The tutorial's code works
# ---------------------------------------------------------------------------------------------


def _readme_block(lang: str, marker: str) -> str:
    text = (REPO / "plugins" / "README.md").read_text()
    match = re.search(rf"<!-- {marker} -->\s*```{lang}\n(.*?)```", text, re.S)
    assert match, f"plugins/README.md lacks the block marked {marker}"
    return textwrap.dedent(match.group(1))


def test_tutorial_loose_plugin_and_config_work(tmp_path: Path, make_plugin_manager: Any) -> None:
    (tmp_path / "hello_botcore.py").write_text(_readme_block("python", "tutorial:loose-plugin"))

    class FakeExchange:
        @hookimpl
        def botcore_register_exchanges(self, register: Any) -> None:
            register("binance", dict)

    pm = make_plugin_manager(FakeExchange(), plugins_dir=tmp_path)
    registry = collect_registry(pm)
    config = config_from_text(_readme_block("yaml", "tutorial:config"), source="tutorial.yaml")
    validate_against_registry(config, registry)
    [spec] = config.strategies
    strategy = registry.strategies[spec.type](spec.name, spec.params, {s: None for s in spec.symbols or ()})
    assert strategy.name == spec.name
    assert list(strategy.symbols) == ["BTCUSDT"]
