"""Prometheus metrics: hook feeders, scrape-time engine status, rate-limit headroom, the endpoint.

Every test scrapes a real HTTP endpoint on a free loopback port (or renders the same text) and
parses it with prometheus-client's own parser.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from botcore import builtin_services
from botcore.config import config_from_dict
from botcore.engine import Engine
from botcore.events import StreamStatus
from botcore.jobs import FetchCost
from botcore.model import (
    CancelRequest,
    Drift,
    ExecutionReport,
    Fill,
    Instrument,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    Side,
)
from botcore.plugins import Hooks, get_plugin_manager
from botcore.prometheus import PrometheusMetrics, rate_limits

D = Decimal
S = OrderStatus
SYM = "BTCUSDT"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    assert metrics.address is not None
    host, port = metrics.address
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200
        return samples(resp.read().decode())


@pytest.fixture
def served() -> Iterator[PrometheusMetrics]:
    m = PrometheusMetrics(process=False)
    m.serve("127.0.0.1", 0)
    yield m
    m.close()


def test_hook_feeders_show_up_in_a_scrape(served: PrometheusMetrics) -> None:
    m = served
    order = OrderRequest(SYM, Side.BUY, D("0.002"), D("100"), client_order_id="bcr1-1")
    m.order_submitted(order)
    m.order_submitted(order)
    m.order_outcome(OrderOutcome("new", SYM, "bcr1-1", S.NEW, sent_ns=1_000_000, done_ns=4_000_000))  # 3 ms
    m.order_outcome(OrderOutcome("cancel", SYM, "bcr1-1", S.REJECTED, error_code=-2011))
    m.order_filled(Fill(SYM, "bcr1-1", 1, 5, Side.BUY, D("100"), D("0.0015"), D(0), "USDT", True, 1))
    m.order_cancelled(
        ExecutionReport(
            SYM,
            "bcr1-1",
            1,
            Side.BUY,
            "LIMIT_MAKER",
            S.CANCELED,
            "CANCELED",
            D("100"),
            D("0.002"),
            D("0.0015"),
            D("0.15"),
        )
    )
    m.trust_changed("market:BTCUSDT", False, "sequence gap")
    m.trust_changed("market:BTCUSDT", True, "resynced")
    m.trust_changed("user", False, "reconnecting")
    m.reconcile_report(
        "reconcile_light",
        [
            Drift("balance.free", "USDT", "1", "2", 0, "missed fill"),
            Drift("balance.free", "BTC", "1", "2", 0, "missed fill"),
        ],
    )
    m.fetch_cost(FetchCost("reconcile_full", "my_trades:BTCUSDT", 0.004, 20, True, 1))
    m.fetch_cost(FetchCost("reconcile_full", "account_snapshot", 0.5, None, False, 1))
    got = scrape(m)
    assert got[("botcore_orders_submitted_total", (("side", "BUY"), ("symbol", SYM)))] == 2
    assert got[("botcore_order_outcomes_total", (("action", "cancel"), ("status", "REJECTED")))] == 1
    assert got[("botcore_order_roundtrip_seconds_bucket", (("action", "new"), ("le", "0.002")))] == 0
    assert got[("botcore_order_roundtrip_seconds_bucket", (("action", "new"), ("le", "0.005")))] == 1
    assert got[("botcore_fills_total", (("liquidity", "maker"), ("side", "BUY"), ("symbol", SYM)))] == 1
    assert got[("botcore_fill_volume_total", (("side", "BUY"), ("symbol", SYM)))] == pytest.approx(0.0015)
    assert got[("botcore_fill_notional_total", (("side", "BUY"), ("symbol", SYM)))] == pytest.approx(0.15)
    assert got[("botcore_orders_cancelled_total", (("status", "CANCELED"), ("symbol", SYM)))] == 1
    assert got[("botcore_stream_untrusted_total", (("stream", "market:BTCUSDT"),))] == 1
    assert got[("botcore_stream_trusted", (("stream", "market:BTCUSDT"),))] == 1
    assert got[("botcore_stream_trusted", (("stream", "user"),))] == 0
    assert got[("botcore_drifts_total", (("cause", "missed fill"), ("field", "balance.free")))] == 2
    assert got[("botcore_reconciles_total", (("job", "reconcile_light"),))] == 1
    assert got[("botcore_job_fetch_seconds_count", (("call", "my_trades"), ("job", "reconcile_full")))] == 1
    assert got[("botcore_job_fetch_weight_total", (("job", "reconcile_full"),))] == 20
    assert got[("botcore_job_fetch_errors_total", (("job", "reconcile_full"),))] == 1


STATUS: dict[str, Any] = {
    "events": 120,
    "frames": 100,
    "orders": 7,
    "live_orders": 2,
    "unknown_orders": 1,
    "backlog": 3,
    "halted": "risk reconcile: drift",
    "user_trusted": True,
    "pnl": "1.25",
    "vetoes": {"max_position": 4},
    "counters": {"reconciles": 9, "drifts": 2},
    "position": {SYM: "0.003"},
    "trusted": {SYM: False},
    "books": {SYM: {"trusted": False, "resyncs": 2, "gaps": 1, "snapshots": 3, "age_ms": 250}},
    "latency_us": {"count": 10, "p50": 20.0, "p99": 80.0, "max": 90.0},
}


class Limiter:
    limits = [("REQUEST_WEIGHT", "1M", 1200), ("ORDERS", "10S", 50)]

    def used(self, kind: str, window: str) -> int:
        return {"REQUEST_WEIGHT": 300, "ORDERS": 50}[kind]


class Adapter:
    limiter = Limiter()


def test_engine_status_and_rate_limits_are_read_at_scrape_time() -> None:
    status = dict(STATUS)
    m = PrometheusMetrics(status=lambda: status, adapter=Adapter(), process=False)
    m.serve("127.0.0.1", 0)
    try:
        got = scrape(m)
        assert got[("botcore_engine_events_total", ())] == 120
        assert got[("botcore_live_orders", ())] == 2 and got[("botcore_unknown_orders", ())] == 1
        assert got[("botcore_halted", ())] == 1 and got[("botcore_pnl", ())] == 1.25
        assert got[("botcore_risk_vetoes_total", (("check", "max_position"),))] == 4
        assert got[("botcore_engine_counter_total", (("name", "reconciles"),))] == 9
        assert got[("botcore_book_gaps_total", (("symbol", SYM),))] == 1
        assert got[("botcore_book_resyncs_total", (("symbol", SYM),))] == 2
        assert got[("botcore_book_trusted", (("symbol", SYM),))] == 0
        assert got[("botcore_book_age_seconds", (("symbol", SYM),))] == 0.25
        assert got[("botcore_position", (("symbol", SYM),))] == 0.003
        assert got[("botcore_tick_to_order_seconds", (("quantile", "0.99"),))] == pytest.approx(80e-6)
        assert got[("botcore_rate_limit_headroom", (("kind", "REQUEST_WEIGHT"), ("window", "1M")))] == 0.75
        assert got[("botcore_rate_limit_headroom", (("kind", "ORDERS"), ("window", "10S")))] == 0
        assert got[("botcore_rate_limit_used", (("kind", "REQUEST_WEIGHT"), ("window", "1M")))] == 300
        status["events"] = 121  # live: the next scrape reads the engine again
        status["halted"] = None
        got = scrape(m)
        assert got[("botcore_engine_events_total", ())] == 121 and got[("botcore_halted", ())] == 0
    finally:
        m.close()


def test_book_age_falls_back_to_the_callback_and_status_errors_do_not_break_scrapes() -> None:
    status = {"books": {SYM: {"trusted": True, "gaps": 0, "resyncs": 0, "snapshots": 1}}}
    m = PrometheusMetrics(status=lambda: status, book_age=lambda sym: 1.5, process=False)
    assert samples(m.render().decode())[("botcore_book_age_seconds", (("symbol", SYM),))] == 1.5

    def broken() -> Mapping[str, Any]:
        raise RuntimeError("engine gone")

    m.status = broken
    m.order_submitted(OrderRequest(SYM, Side.SELL, D("1"), D("1"), client_order_id="x"))
    got = samples(m.render().decode())
    assert got[("botcore_orders_submitted_total", (("side", "SELL"), ("symbol", SYM)))] == 1
    assert ("botcore_engine_events_total", ()) not in got


def test_rate_limits_prefers_an_explicit_adapter_method() -> None:
    class Explicit:
        def rate_limits(self) -> list[tuple[str, str, int, int]]:
            return [("REQUEST_WEIGHT", "1M", 10, 100)]

    assert rate_limits(Explicit()) == [("REQUEST_WEIGHT", "1M", 10, 100)]
    assert rate_limits(Adapter()) == [("REQUEST_WEIGHT", "1M", 300, 1200), ("ORDERS", "10S", 50, 50)]
    assert rate_limits(object()) == []


def test_close_stops_the_endpoint(served: PrometheusMetrics) -> None:
    assert served.address is not None
    host, port = served.address
    assert host == "127.0.0.1" and port > 0
    with pytest.raises(RuntimeError):
        served.serve("127.0.0.1", 0)
    served.close()
    served.close()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=2)


def test_process_metrics_are_exported_by_default() -> None:
    got = samples(PrometheusMetrics().render().decode())
    assert any(name.startswith("process_") for name, _ in got)


# ------------------------------------------------------------------------------------------------
# Through the services plugin: on with metrics.port, off by default
# ------------------------------------------------------------------------------------------------


class Gateway:
    def submit(self, order: OrderRequest) -> None: ...

    def cancel(self, request: CancelRequest) -> None: ...

    def query(self, symbol: str, cid: str) -> None: ...

    def fetch_depth(self, symbol: str, limit: int = 1000) -> None: ...

    def close(self, timeout: float = 5.0) -> bool:
        return True


@pytest.fixture
def services() -> Iterator[builtin_services.Services]:
    yield builtin_services.SERVICES
    builtin_services.SERVICES.stop(None, "test end")


def make_engine(config: Any) -> tuple[Engine, Hooks]:
    inst = Instrument(SYM, "BTC", "USDT", D("0.01"), D("0.00001"))
    hooks = Hooks(get_plugin_manager(load_entrypoints=False, extra=[builtin_services]))
    eng = Engine({SYM: inst}, [], [], gateway=Gateway(), hooks=hooks)
    eng.bot_config = config
    return eng, hooks


def test_endpoint_follows_the_config(tmp_path: Path, services: builtin_services.Services) -> None:
    base = {"exchange": {"name": "replay", "symbols": [SYM]}, "run": {"journal": None}}
    eng, hooks = make_engine(config_from_dict(base))
    hooks.startup(eng)
    assert services.metrics is None  # off by default
    hooks.shutdown(eng, "t")
    eng, hooks = make_engine(config_from_dict({**base, "metrics": {"port": 0, "host": "127.0.0.1"}}))
    hooks.startup(eng)
    m = services.metrics
    assert m is not None
    eng.process(StreamStatus("user", False, "reconnecting", 0))
    eng.drain()
    got = scrape(m)
    assert got[("botcore_stream_untrusted_total", (("stream", "user"),))] == 1
    assert ("botcore_engine_events_total", ()) in got
    hooks.shutdown(eng, "t")
    assert services.metrics is None and m.address is not None
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{m.address[0]}:{m.address[1]}/metrics", timeout=2)
