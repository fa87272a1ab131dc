"""User-data stream over the WebSocket API: subscribe, decode, terminate/resubscribe, duplicates."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from binance_fakes import Sink, WsServer
from botcore_exchange_binance.clock import ServerClock
from botcore_exchange_binance.scrub import Secret
from botcore_exchange_binance.userstream import UserStream

from botcore.core import PositionCache
from botcore.events import UserEvent
from botcore.model import AccountUpdate, ExecutionReport, Instrument

KEY, SECRET = "userkey-00001", "usersecret-00001-abc"


class SubVenue:
    """Answers userDataStream.subscribe.signature after checking the signature."""

    def __init__(self) -> None:
        self.subscribes: list[dict[str, Any]] = []
        self.reject_next: list[dict[str, Any]] = []

    def __call__(self, msg: dict[str, Any], server: WsServer, conn: int) -> list[dict[str, Any]]:
        assert msg["method"] == "userDataStream.subscribe.signature"
        p = msg["params"]
        payload = "&".join(f"{k}={p[k]}" for k in sorted(p) if k != "signature")
        assert p["apiKey"] == KEY
        assert p["signature"] == hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()
        self.subscribes.append(p)
        if self.reject_next:
            return [{"id": msg["id"], "status": 400, "error": self.reject_next.pop(0)}]
        return [{"id": msg["id"], "status": 200, "result": {"subscriptionId": len(self.subscribes) - 1}}]


FILL = {
    "e": "executionReport", "E": 10, "s": "BTCUSDT", "c": "mm-1", "S": "BUY", "o": "LIMIT_MAKER", "f": "GTC",
    "q": "0.002", "p": "60000.00", "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 5, "l": "0.001",
    "z": "0.001", "L": "60000.00", "n": "0.000001", "N": "BTC", "T": 11, "t": 900, "m": True, "C": "",
    "Z": "60.0",
}
POSITION = {"e": "outboundAccountPosition", "E": 12, "u": 11,
            "B": [{"a": "BTC", "f": "0.000999", "l": "0"}, {"a": "USDT", "f": "40", "l": "60"}]}


@pytest.fixture
def venue() -> SubVenue:
    return SubVenue()


@pytest.fixture
def server(venue: SubVenue) -> Iterator[WsServer]:
    s = WsServer(responder=venue)
    yield s
    s.close()


@pytest.fixture
def stream(server: WsServer) -> Iterator[tuple[UserStream, Sink, list[int]]]:
    sink = Sink()
    resyncs: list[int] = []
    us = UserStream(server.url + "/ws-api/v3", Secret(KEY), Secret(SECRET), ServerClock(), sink,
                    resync_clock=lambda: resyncs.append(1), backoff_initial_s=0.02, backoff_max_s=0.1)
    us.start()
    yield us, sink, resyncs
    us.stop()


def _status(trusted: bool, reason: str, n: int = 1):  # noqa: ANN202
    return lambda ev: sum(1 for e in ev if getattr(e, "stream", None) == "user" and e.trusted is trusted
                          and e.reason == reason) >= n


def test_subscribe_then_events_are_decoded(stream: tuple[UserStream, Sink, list[int]], server: WsServer) -> None:
    us, sink, _ = stream
    sink.wait_for(_status(True, "subscribed"))
    server.push({"subscriptionId": 0, "event": FILL})
    server.push({"subscriptionId": 0, "event": POSITION})
    server.push({"subscriptionId": 0, "event": {"e": "listStatus", "E": 1}})  # not for the engine
    events = sink.wait_for(lambda ev: len([e for e in ev if isinstance(e, UserEvent)]) == 2 and
                           [e for e in ev if isinstance(e, UserEvent)])
    rep, pos = events[0].event, events[1].event
    assert isinstance(rep, ExecutionReport) and rep.trade_id == 900 and rep.last_qty == Decimal("0.001")
    assert isinstance(pos, AccountUpdate) and pos.balances[1].locked == Decimal(60)
    assert us.trusted and us.subscription_id == 0


def test_terminated_stream_resubscribes_with_a_fresh_signature(
    stream: tuple[UserStream, Sink, list[int]], server: WsServer, venue: SubVenue
) -> None:
    us, sink, _ = stream
    sink.wait_for(_status(True, "subscribed"))
    server.push({"subscriptionId": 0, "event": {"e": "eventStreamTerminated", "E": 5}})
    sink.wait_for(_status(True, "resubscribed"))
    reasons = [(s.trusted, s.reason) for s in sink.statuses("user")]
    assert reasons == [(True, "subscribed"), (False, "user stream terminated"), (True, "resubscribed")]
    assert len(venue.subscribes) == 2 and len(server.paths) == 1  # same connection
    assert venue.subscribes[0]["signature"] != venue.subscribes[1]["signature"] or (
        venue.subscribes[0]["timestamp"] == venue.subscribes[1]["timestamp"])


def test_disconnect_untrusts_and_resubscribes(stream: tuple[UserStream, Sink, list[int]], server: WsServer,
                                              venue: SubVenue) -> None:
    us, sink, _ = stream
    sink.wait_for(_status(True, "subscribed"))
    server.drop()
    sink.wait_for(_status(True, "resubscribed"))
    assert [s.trusted for s in sink.statuses("user")] == [True, False, True]
    assert len(server.paths) == 2 and len(venue.subscribes) == 2


def test_clock_error_on_subscribe_resyncs_and_retries(stream: tuple[UserStream, Sink, list[int]],
                                                       server: WsServer, venue: SubVenue) -> None:
    us, sink, resyncs = stream
    sink.wait_for(_status(True, "subscribed"))
    venue.reject_next.append({"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})
    server.drop()
    sink.wait_for(_status(True, "resubscribed"))
    assert resyncs == [1] and len(venue.subscribes) == 3


def test_duplicate_events_are_harmless_downstream(stream: tuple[UserStream, Sink, list[int]],
                                                  server: WsServer) -> None:
    us, sink, _ = stream
    sink.wait_for(_status(True, "subscribed"))
    for _ in range(2):  # the venue replays the same fill
        server.push({"subscriptionId": 0, "event": FILL})
    events = sink.wait_for(lambda ev: len([e for e in ev if isinstance(e, UserEvent)]) == 2 and
                           [e for e in ev if isinstance(e, UserEvent)])
    assert events[0].event == events[1].event  # delivered as equal values: dedupable by trade id
    cache = PositionCache()
    cache.add_instrument(Instrument(symbol="BTCUSDT", base_asset="BTC", quote_asset="USDT",
                                    tick_size=Decimal("0.01"), step_size=Decimal("0.00001")))
    applied = [cache.apply_execution_report(e.event) for e in events]
    assert applied[0] is not None and applied[1] is None
    assert cache.position("BTCUSDT") == Decimal("0.001") - Decimal("0.000001")  # once, net of the BTC fee


def test_rejected_subscription_reconnects(server: WsServer, venue: SubVenue) -> None:
    venue.reject_next.append({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    sink = Sink()
    us = UserStream(server.url + "/ws-api/v3", Secret(KEY), Secret(SECRET), ServerClock(), sink,
                    backoff_initial_s=0.02)
    us.start()
    try:
        sink.wait_for(_status(True, "subscribed"))
        assert len(server.paths) == 2  # dropped the connection after the rejection, then retried
    finally:
        us.stop()
