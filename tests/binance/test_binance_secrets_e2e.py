"""A short session with DEBUG logging of everything: the API secret, key and signatures never show.

Runs both order transports against the embedded paper exchange with the root logger, urllib3,
requests, python-binance and websocket-client (frame trace on) at DEBUG, including failure paths
(5xx, lost ack, connection refused), then greps everything captured.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace

import pytest
import websocket
from binance_fakes import Sink
from botcore_exchange_binance.adapter import BinanceAdapter
from botcore_exchange_paper.config import AccountSpec, PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded

from botcore.events import StreamStatus
from botcore.model import CancelRequest, OrderRequest, OrderStatus, Side

pytestmark = pytest.mark.e2e

API_KEY = "e2eKEY" + "k" * 26
API_SECRET = "e2eSECRET" + "s" * 40
SIG_LEAK = re.compile(r"signature=|[\"']signature[\"']\s*:\s*[\"'][0-9a-fA-F]{16}")


@pytest.fixture
def paper() -> Iterator[EmbeddedPaper]:
    cfg = PaperConfig(synthetic=True, symbols=["BTCUSDT"],
                      accounts=[AccountSpec(API_KEY, API_SECRET, {"USDT": Decimal(10000), "BTC": Decimal(1)})])
    p = start_embedded(cfg, run_market=False)
    p.step(200)
    yield p
    p.close()


def session(paper: EmbeddedPaper, transport: str) -> None:
    venue = paper.endpoints()
    cfg = SimpleNamespace(exchange=SimpleNamespace(
        mode="paper", symbols=["BTCUSDT"], api_key=None, api_secret=None,
        options={"order_transport": transport, "request_timeout_s": 0.5}))
    a = BinanceAdapter.from_config(cfg, venue)
    assert a.settings.api_secret.reveal() == API_SECRET  # the paper account we made
    sink = Sink()
    try:
        a.exchange_info(["BTCUSDT"])
        a.start(sink, ["BTCUSDT"])
        sink.wait_for(lambda ev: {(s.stream, s.trusted) for s in ev if isinstance(s, StreamStatus)}
                      >= {("market", True), ("user", True)})
        a.open_orders("BTCUSDT")  # a signed GET: the signature is in the URL urllib3 logs
        bid = Decimal(json.loads(a.depth_snapshot("BTCUSDT", 5))["bids"][0][0]) - 1
        o = OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), bid, client_order_id=f"sec-{transport}-1")
        assert a.submit(o)[0].status is OrderStatus.NEW
        a.query_order("BTCUSDT", o.client_order_id)
        o2 = OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), bid - 1, client_order_id=f"sec-{transport}-2")
        a.cancel_replace(CancelRequest("BTCUSDT", o.client_order_id), o2)
        a.account_snapshot()
        a.my_trades("BTCUSDT")
        paper.faults.order_5xx(count=1)
        assert a.submit(OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), bid - 2,
                                     client_order_id=f"sec-{transport}-3"))[0].status is OrderStatus.UNKNOWN
        paper.faults.ack_lost(count=1)
        assert a.submit(OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), bid - 3,
                                     client_order_id=f"sec-{transport}-4"))[0].status is OrderStatus.UNKNOWN
        paper.faults.user_stream_terminated()
        sink.wait_for(lambda ev: any(s.reason == "resubscribed" for s in ev if isinstance(s, StreamStatus)))
        for i in (2, 3, 4):
            a.cancel(CancelRequest("BTCUSDT", f"sec-{transport}-{i}"))
        # exceptions that carry signed URLs inside the libraries, logged with tracebacks
        dead = BinanceAdapter.from_config(SimpleNamespace(exchange=SimpleNamespace(
            mode="paper", symbols=["BTCUSDT"], rest_url="http://127.0.0.1:9", options={"order_transport": "rest"})),
            venue)
        try:
            dead.account_snapshot()
        except Exception:
            logging.getLogger("botcore.gateway").exception("account snapshot failed")
        finally:
            dead.stop()
        for thing in (a, a.settings, a.rest, a.ws_api, a.user, a.market, venue):
            logging.getLogger("test").debug("repr: %r", thing)
    finally:
        a.stop()
    time.sleep(0.05)


@pytest.mark.parametrize("transport", ["rest", "ws_api"])
def test_debug_logs_never_contain_secrets(paper: EmbeddedPaper, transport: str,
                                          caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    websocket.enableTrace(True, level="DEBUG")
    loggers = ["", "urllib3", "urllib3.connectionpool", "requests", "websocket", "binance", "botcore_exchange_binance"]
    old = {n: logging.getLogger(n).level for n in loggers}
    for n in loggers:
        logging.getLogger(n).setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            session(paper, transport)
    finally:
        websocket.enableTrace(False)
        for n, level in old.items():
            logging.getLogger(n).setLevel(level)
    out, err = capfd.readouterr()
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records) + out + err
    assert len(caplog.records) > 50  # we really logged a lot
    # ... including signed request lines and signed frames
    assert "/api/v3/openOrders?" in text and "userDataStream.subscribe.signature" in text
    assert ("/api/v3/order" if transport == "rest" else "order.place") in text
    assert API_SECRET not in text
    assert API_KEY not in text
    assert not SIG_LEAK.search(text), SIG_LEAK.search(text)
