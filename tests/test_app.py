"""app.run / app.check end to end with the in-process replay exchange (built-in plugin)."""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import botcore.builtin
from botcore import app, hookimpl
from botcore.config import ConfigError, config_from_text
from botcore.model import BookTop, Instrument, Quote, Side
from botcore.plugins import get_plugin_manager


class Touch:
    """Quotes the touch; ``qty`` may be made invalid to test ``check``."""

    def __init__(self, name: str, params: dict[str, Any], instruments: dict[str, Instrument]) -> None:
        if "qty" not in params:
            raise ValueError("qty is required")
        self.name = name
        self.symbols = list(instruments)
        self.instruments = instruments
        self.qty = Decimal(str(params["qty"]))
        self.max_live_orders = 2

    def _quotes(self, top: BookTop) -> list[Quote]:
        inst = self.instruments[top.symbol]
        return [
            Quote(Side.BUY, inst.ticks_to_price(top.bid_price), self.qty),
            Quote(Side.SELL, inst.ticks_to_price(top.ask_price), self.qty),
        ]

    def on_top(self, ctx: Any, top: BookTop) -> list[Quote]:
        return self._quotes(top)

    def first_quotes(self, top: BookTop, instruments: Any = None) -> list[Quote]:
        return self._quotes(top)

    def on_fill(self, ctx: Any, fill: Any) -> None:
        pass

    def on_order_update(self, ctx: Any, report: Any) -> None:
        pass


class Plugin:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    def botcore_register_strategies(self, register: Any) -> None:
        register("touch", Touch)

    @hookimpl
    def botcore_register_jobs(self, register: Any) -> None:
        def ping(handle: Any, params: dict[str, Any]) -> None:
            self.events.append(("job", (threading.current_thread().name, handle.symbols, params)))

        register("ping", ping)

    @hookimpl
    def botcore_startup(self, engine: Any) -> None:
        assert engine.bot_config is not None and engine.bot_config.run.name == "t"
        assert not engine.is_running  # wired, not started
        self.events.append(("startup", threading.current_thread().name))
        self.events.append(("engine cpu", engine.config.cpu))

    @hookimpl
    def botcore_shutdown(self, engine: Any, reason: str) -> None:
        self.events.append(("shutdown", (reason, engine.status()["live_orders"])))

    def of(self, kind: str) -> list[Any]:
        return [v for k, v in self.events if k == kind]


CONFIG = """
run: {{name: t, journal: null, status_every: 0.2s, duration: {duration}}}
exchange: {{name: replay, mode: paper, symbols: [BTCUSDT]{options}}}
paper: {{speed: {speed}}}
strategies:
  - {{name: mm, type: touch, params: {{qty: "{qty}"}}}}
schedules:
  - {{name: ping, job: ping, every: 0.1s, params: {{n: 1}}}}
"""


def cfg(duration: str = "null", speed: float = 0, qty: str = "0.001", options: str = "") -> Any:
    return config_from_text(CONFIG.format(duration=duration, speed=speed, qty=qty, options=options))


def args(**kw: Any) -> argparse.Namespace:
    base = {"log_level": "WARNING", "duration": None, "i_mean_production": False}
    base.update(kw)
    return argparse.Namespace(**base)


@pytest.fixture
def plugin() -> Plugin:
    return Plugin()


@pytest.fixture
def pm(plugin: Plugin) -> Any:
    return get_plugin_manager(load_entrypoints=False, extra=[botcore.builtin, plugin])


def test_run_trades_for_the_duration_then_stops_cleanly(pm: Any, plugin: Plugin) -> None:
    out = io.StringIO()
    code = app.run(cfg(duration="1.2s", speed=20), pm, args(), out=out)
    text = out.getvalue()
    assert code == 0, text
    assert "botcore: running t on replay (paper) BTCUSDT for 1.2s" in text
    assert "stopped (duration reached)" in text
    assert text.count("events=") >= 3  # periodic status lines + the final one
    orders = int(text.rsplit("orders ", 1)[1].split(",")[0])
    assert orders > 0
    # requotes of the touch go out as cancel-replace: one request, the order leaves on the tick
    replaces = int(text.rsplit("(", 1)[1].split(" as cancel-replace")[0])
    assert 0 < replaces < orders
    assert plugin.of("startup") == ["MainThread"]
    assert plugin.of("shutdown") == [("duration reached", 0)]  # open orders were cancelled first
    jobs = plugin.of("job")
    assert jobs and all(name.startswith("botcore-job") for name, _, _ in jobs)
    assert jobs[0][1] == ("BTCUSDT",) and jobs[0][2] == {"n": 1}


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="thread affinity is Linux-only")
def test_the_engine_section_pins_the_engine_thread(pm: Any, plugin: Plugin) -> None:
    cpu = max(os.sched_getaffinity(0))
    config = config_from_text(CONFIG.format(duration="0.3s", speed=20, qty="0.001", options="") + f"engine: {{cpu: {cpu}}}\n")
    assert app.run(config, pm, args(), out=io.StringIO()) == 0
    assert plugin.of("engine cpu") == [cpu]
    app.run(cfg(duration="0.3s", speed=20), pm, args(), out=io.StringIO())
    assert plugin.of("engine cpu") == [cpu, None]  # unpinned unless configured


def test_run_ends_with_the_replay(pm: Any, plugin: Plugin) -> None:
    out = io.StringIO()
    code = app.run(cfg(options=", options: {max_frames: 5000}"), pm, args(), out=out)
    assert code == 0
    assert "stopped (replay finished)" in out.getvalue()
    assert plugin.of("shutdown")[0][0] == "replay finished"


def test_cli_duration_overrides_config(pm: Any) -> None:
    out = io.StringIO()
    from datetime import timedelta

    t0 = time.monotonic()
    assert app.run(cfg(duration="30s", speed=1), pm, args(duration=timedelta(seconds=0.3)), out=out) == 0
    assert time.monotonic() - t0 < 15 and "for 0.3s" in out.getvalue()


def test_production_is_refused_without_both_flags(pm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K", "key")
    monkeypatch.setenv("SEC", "secret")
    built: list[Any] = []

    class Spy:
        @hookimpl
        def botcore_register_exchanges(self, register: Any) -> None:
            register("spyx", lambda config, endpoints: built.append(config))

    pm2 = get_plugin_manager(load_entrypoints=False, extra=[Spy(), Plugin()])
    config = config_from_text(
        """
exchange: {name: spyx, mode: production, allow_production: true, symbols: [BTCUSDT],
           api_key: $env:K, api_secret: $env:SEC}
"""
    )
    out = io.StringIO()
    assert app.run(config, pm2, args(i_mean_production=False), out=out) == app.EXIT_CONFIG
    assert "--i-mean-production" in out.getvalue() and built == []
    assert "secret" not in out.getvalue()


def test_paper_mode_without_a_venue_is_a_clear_error() -> None:
    class Other:
        @hookimpl
        def botcore_register_exchanges(self, register: Any) -> None:
            register("elsewhere", lambda config, endpoints: pytest.fail("adapter must not be built"))

    pm2 = get_plugin_manager(load_entrypoints=False, extra=[Other(), Plugin()])
    config = config_from_text("exchange: {name: elsewhere, mode: paper, symbols: [BTCUSDT]}")
    with pytest.raises(ConfigError, match="botcore-exchange-paper") as err:
        app.run(config, pm2, args(), out=io.StringIO())
    assert "exchange.mode" in str(err.value)


def test_bad_strategy_params_name_the_yaml_key(pm: Any) -> None:
    config = config_from_text(
        """
exchange: {name: replay, mode: paper, symbols: [BTCUSDT]}
strategies:
  - {name: mm, type: touch, params: {}}
"""
    )
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.params: qty is required"):
        app.run(config, pm, args(), out=io.StringIO())


def test_unknown_names_are_reported_before_anything_starts(pm: Any) -> None:
    config = config_from_text("exchange: {name: replya, mode: paper, symbols: [BTCUSDT]}")
    with pytest.raises(ConfigError, match="did you mean 'replay'"):
        app.run(config, pm, args(), out=io.StringIO())


def test_check_prints_instruments_and_first_quotes(pm: Any) -> None:
    out = io.StringIO()
    assert app.check(cfg(), pm, args(), out=out) == 0
    text = out.getvalue()
    assert "instrument BTCUSDT: BTC/USDT tick 0.01000000" in text
    assert "first quote mm BTCUSDT L0 BUY 0.001 @ 61837.63" in text and ": ok" in text
    assert "check OK" in text


def test_check_fails_on_quotes_that_break_exchange_filters(
    pm: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    out = io.StringIO()
    assert app.check(cfg(qty="0.000001"), pm, args(), out=out) == app.EXIT_CONFIG  # below LOT_SIZE
    assert "FAILS LOT_SIZE" in out.getvalue()
    assert "check failed" in capsys.readouterr().err


def test_run_ids_and_status_line() -> None:
    assert app.make_run_id(0) == "0" and app.make_run_id(36**6) == "1000000"
    now = app.make_run_id()
    assert now.isalnum() and now.islower() and 6 <= len(now) <= 7
    assert app.make_run_id(1_700_000_000) != app.make_run_id(1_700_000_001)
    line = app.status_line(
        {
            "elapsed_s": 1.5,
            "events": 10,
            "quotes": 2,
            "orders": 3,
            "fills": 1,
            "position": {"BTCUSDT": "0.001"},
            "pnl": "-0.5",
            "latency_us": {"count": 4, "p50": 12.3, "p99": 45.6},
            "trusted": {"BTCUSDT": False},
        }
    )
    assert (
        "orders=3" in line and "BTCUSDT=0.001" in line and "p50=12.3us" in line and "paused:BTCUSDT" in line
    )


LOOSE_PLUGIN = """
from decimal import Decimal
from botcore import hookimpl
from botcore.builtin import botcore_register_exchanges, botcore_start_venue  # the replay venue
from botcore.model import Quote, Side


class Touch:
    def __init__(self, name, params, instruments):
        self.name, self.symbols, self.inst = name, list(instruments), instruments
        self.max_live_orders = 2

    def on_top(self, ctx, top):
        i = self.inst[top.symbol]
        return [Quote(Side.BUY, i.ticks_to_price(top.bid_price), Decimal("0.001")),
                Quote(Side.SELL, i.ticks_to_price(top.ask_price), Decimal("0.001"))]

    def on_fill(self, ctx, fill): pass
    def on_order_update(self, ctx, report): pass


@hookimpl
def botcore_register_strategies(register):
    register("touch", Touch)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_cli_run_stops_cleanly_on_signals(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "replay_touch.py").write_text(LOOSE_PLUGIN)
    config = tmp_path / "run.yaml"
    config.write_text(
        textwrap.dedent(
            """
            run: {name: sig, journal: null, status_every: 0.2s}
            exchange: {name: replay, mode: paper, symbols: [BTCUSDT]}
            paper: {speed: 1}
            strategies: [{name: mm, type: touch}]
            """
        )
    )
    env = {**os.environ, "BOTCORE_LOAD_PLUGINS": ""}  # hermetic: no installed plugin
    proc = subprocess.Popen(
        [sys.executable, "-m", "botcore", "--plugins-dir", str(tmp_path / "plugins"), "run", str(config)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stderr is not None
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "events=" in line and "orders=0" not in line:
                break  # running and already trading
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = "".join(lines) + rest
    assert proc.returncode == 0, err
    assert f"stopped ({sig.name})" in err
    assert "orders may still be open" not in err


# ------------------------------------------------------------------------------------------------
# The trust layer at start-up: reconcile_guard always in the chain, recovery before quoting,
# a foreign open order found at start halts quoting
# ------------------------------------------------------------------------------------------------


class Seeded:
    """A replay exchange (``seeded``) whose account already has open orders when the run starts."""

    def __init__(self, orders: list[tuple[str, str]]) -> None:
        self.orders = orders  # (client order id, price)
        self.adapter: Any = None
        self.seeded = 0

    def requests(self) -> list[tuple[str, str]]:
        """What the run asked the venue (the seeding left out)."""
        return list(self.adapter.requests[self.seeded :])

    @hookimpl
    def botcore_register_exchanges(self, register: Any) -> None:
        def factory(config: Any, endpoints: Any = None) -> Any:
            from botcore.builtin import make_replay_adapter
            from botcore.model import OrderRequest

            adapter = make_replay_adapter(config, endpoints)
            for cid, price in self.orders:
                adapter.submit(
                    OrderRequest("BTCUSDT", Side.SELL, Decimal("0.002"), Decimal(price), client_order_id=cid)
                )
            self.adapter, self.seeded = adapter, len(adapter.requests)
            return adapter

        register("seeded", factory)

    @hookimpl
    def botcore_start_venue(self, config: Any) -> Any:
        from botcore.contracts import VenueEndpoints

        if config.exchange.name != "seeded":
            return None
        return VenueEndpoints(
            rest_url="replay://local", stream_url="replay://local", ws_api_url="replay://local"
        )


TRUST_CONFIG = """
run: {{name: t, journal: {journal}, status_every: 0.2s, duration: 1.0s}}
exchange: {{name: seeded, mode: paper, symbols: [BTCUSDT]}}
paper: {{speed: 20}}
strategies:
  - {{name: mm, type: touch, params: {{qty: "0.001"}}}}
plugins:
  recovery: {{policy: cancel, grace: 1s}}
"""


@pytest.fixture
def services() -> Any:
    import botcore.builtin_services

    yield botcore.builtin_services.SERVICES
    botcore.builtin_services.SERVICES.stop(None, "test end")


def _trust_pm(plugin: Plugin, seeded: Seeded) -> Any:
    import botcore.builtin_services

    return get_plugin_manager(
        load_entrypoints=False, extra=[botcore.builtin, botcore.builtin_services, plugin, seeded]
    )


def test_a_foreign_order_found_at_start_halts_quoting_from_the_first_event(
    plugin: Plugin, services: Any
) -> None:
    seeded = Seeded([("web-1", "90000")])
    out = io.StringIO()
    code = app.run(
        config_from_text(TRUST_CONFIG.format(journal="null")), _trust_pm(plugin, seeded), args(), out=out
    )
    text = out.getvalue()
    assert code == 0, text
    assert "HALTED" in text and int(text.rsplit("orders ", 1)[1].split(",")[0]) == 0
    assert "order.missing_local web-1" in (services.reconciler.halted() or "")
    assert not any(action in ("new", "cancel_replace") for action, _ in seeded.requests())
    assert [o.client_order_id for o in seeded.adapter.open_orders()] == ["web-1"]  # not ours to cancel


def test_the_first_account_load_is_not_reported_as_drift() -> None:
    """Loading balances into the empty cache at start is initialisation; a foreign order is not."""
    from botcore.model import Drift

    class _Tracker:
        def get(self, cid: str) -> None:
            return None

    class _Positions:
        def open_order(self, cid: str) -> object:
            return object()  # still open in the cache and not tracked: foreign

    class _Engine:
        tracker, positions = _Tracker(), _Positions()

    drifts = [
        Drift("balance.free", "USDT", "0", "10000", cause="missed fill"),
        Drift("balance.locked", "BTC", "0", "0.1", cause="missed fill"),
        Drift("order.missing_local", "web-1", "", "NEW", cause="order placed outside the bot"),
    ]
    assert [d.key for d in app.startup_drifts(_Engine(), drifts)] == ["web-1"]  # type: ignore[arg-type]


def test_restart_recovery_cancels_the_previous_runs_order_before_quoting(
    plugin: Plugin, services: Any, tmp_path: Path
) -> None:
    from botcore.journal import Journal
    from botcore.model import OrderOutcome, OrderRequest, OrderStatus, OrderType

    path = tmp_path / "journal.sqlite"
    with Journal(path) as j:  # a run that was killed with an order resting
        j.start_run(name="t", run_id="old", id_prefix="bcold-")
        j.record_order(
            OrderRequest(
                "BTCUSDT",
                Side.SELL,
                Decimal("0.002"),
                Decimal("95000"),
                OrderType.LIMIT_MAKER,
                None,
                "bcold-1",
                "mm",
            )
        )
        j.record_outcome(OrderOutcome("new", "BTCUSDT", "bcold-1", OrderStatus.NEW, order_id=1))
    seeded = Seeded([("bcold-1", "95000")])
    out = io.StringIO()
    code = app.run(
        config_from_text(TRUST_CONFIG.format(journal=path)), _trust_pm(plugin, seeded), args(), out=out
    )
    text = out.getvalue()
    assert code == 0, text
    requests = seeded.requests()
    assert requests[0] == ("cancel", "bcold-1")  # recovery, before the first order of this run
    assert any(action == "new" for action, _ in requests[1:])
    assert services.reconciler.halted() is None and "HALTED" not in text  # dealt with: no halt
    assert int(text.rsplit("orders ", 1)[1].split(",")[0]) > 0
    state = Journal.load(path)
    assert state.clean_exit and all(o.client_order_id != "bcold-1" for o in state.open_orders)


def test_the_run_always_has_the_reconcile_guard_in_its_risk_chain() -> None:
    import botcore.builtin_services
    from botcore.engine import RiskLink
    from botcore.plugins import collect_registry
    from botcore.reconcile import Reconciler

    registry = collect_registry(get_plugin_manager(load_entrypoints=False, extra=[botcore.builtin_services]))

    class Other:
        name = "other"

        def check(self, order: Any, ctx: Any) -> str | None:
            return None

    chain, rec = app.with_reconcile_guard([RiskLink("other", Other())], registry)
    assert isinstance(rec, Reconciler) and [link.name for link in chain] == ["reconcile_guard", "other"]
    assert chain[0].check is rec  # first: a halt vetoes before checks that count what they let through
    listed = [RiskLink("other", Other()), RiskLink("mine", rec, shadow=True)]
    assert app.with_reconcile_guard(listed, registry) == (listed, rec)  # configured: left as is
    empty = collect_registry(get_plugin_manager(load_entrypoints=False, extra=[]))
    assert app.with_reconcile_guard([], empty) == ([], None)
