"""Unmodified client libraries against the paper exchange, configured as BINANCE_PROTOCOL.md Part B says.

Pinned versions (these tests encode their behaviour): python-binance 1.0.37, ccxt 4.5.90,
binance-sdk-spot 13.3.0. Each one places, queries and cancels orders, reads balances and receives a
fill provoked by a marketable order against the replayed book.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from importlib.metadata import version
from typing import Any

import pytest
from botcore_exchange_paper.embedded import EmbeddedPaper
from paper_support import KEY, SECRET, SYMBOL, Rest, passive_prices, wait_for

# Noise from inside the client libraries (python-binance's websockets.legacy import, the SDK's aiohttp
# timeout argument, coroutines python-binance leaves behind when its thread's loop closes).
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def test_pinned_client_versions() -> None:
    assert version("python-binance") == "1.0.37"
    assert version("ccxt") == "4.5.90"
    assert version("binance-sdk-spot") == "13.3.0"


def subscriptions(paper: EmbeddedPaper) -> int:
    return int(paper.status()["user_subscriptions"])


@pytest.fixture
def stepper(paper: EmbeddedPaper) -> Iterator[None]:
    """Keep the replayed market moving while a streaming client runs."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            paper.step(20)
            time.sleep(0.02)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    yield
    stop.set()
    t.join(5)


# -- python-binance ------------------------------------------------------------------------------


def test_python_binance(paper: EmbeddedPaper, rest: Rest, monkeypatch: pytest.MonkeyPatch) -> None:
    from binance.base_client import BaseClient
    from binance.client import Client
    from binance.exceptions import BinanceAPIException
    from binance.ws.reconnecting_websocket import ReconnectingWebsocket
    from binance.ws.streams import BinanceSocketManager, ThreadedWebsocketManager

    monkeypatch.setattr(BaseClient, "API_TESTNET_URL", paper.rest_url)
    monkeypatch.setattr(BaseClient, "WS_API_TESTNET_URL", paper.ws_api_url)
    monkeypatch.setattr(BinanceSocketManager, "STREAM_TESTNET_URL", paper.stream_url)
    # its read loops only notice a stop after a 10 s recv timeout: shorten it to keep the test fast
    monkeypatch.setattr(ReconnectingWebsocket, "TIMEOUT", 0.5)

    client = Client(KEY, SECRET, testnet=True)  # pings on construction
    assert abs(client.get_server_time()["serverTime"] - time.time() * 1000) < 5000
    info = client.get_symbol_info(SYMBOL)
    assert info is not None and info["symbol"] == SYMBOL
    usdt = Decimal(client.get_asset_balance("USDT")["free"])
    bid, _ = passive_prices(rest)

    order = client.order_limit_buy(symbol=SYMBOL, quantity="0.001", price=bid)  # form body, recvWindow 10000
    assert order["status"] == "NEW" and order["clientOrderId"].startswith("x-")
    assert client.get_order(symbol=SYMBOL, orderId=order["orderId"])["status"] == "NEW"
    assert order["orderId"] in [o["orderId"] for o in client.get_open_orders(symbol=SYMBOL)]
    assert Decimal(client.get_asset_balance("USDT")["locked"]) > 0
    assert (
        client.cancel_order(symbol=SYMBOL, orderId=order["orderId"])["status"] == "CANCELED"
    )  # DELETE, form body
    with pytest.raises(BinanceAPIException) as err:
        client.cancel_order(symbol=SYMBOL, orderId=order["orderId"])
    assert (err.value.code, err.value.status_code) == (-2011, 400)
    assert Decimal(client.get_asset_balance("USDT")["free"]) == usdt

    events: list[dict[str, Any]] = []
    depth: list[dict[str, Any]] = []
    twm = ThreadedWebsocketManager(api_key=KEY, api_secret=SECRET, testnet=True)
    twm.start()
    try:
        user = twm.start_user_socket(callback=events.append)  # WS API userDataStream.subscribe.signature
        market = twm.start_depth_socket(
            callback=depth.append, symbol=SYMBOL, interval=100
        )  # /ws/btcusdt@depth@100ms
        wait_for(lambda: subscriptions(paper) == 1 and paper.status()["market_connections"] >= 1, timeout=10)
        fill = client.order_market_buy(symbol=SYMBOL, quantity="0.001")
        assert fill["status"] == "FILLED" and fill["fills"]
        wait_for(
            lambda: any(e.get("x") == "TRADE" and e.get("i") == fill["orderId"] for e in events), timeout=10
        )
        paper.step(300)
        wait_for(lambda: any(d.get("e") == "depthUpdate" for d in depth), timeout=10)
        trade = next(e for e in events if e.get("x") == "TRADE")
        assert trade["X"] == "FILLED" and Decimal(trade["z"]) == Decimal("0.001")
        assert any(e.get("e") == "outboundAccountPosition" for e in events)
        assert client.get_my_trades(symbol=SYMBOL)[-1]["orderId"] == fill["orderId"]
        # stopping the sockets first lets it unsubscribe on the connection that holds the subscription
        twm.stop_socket(user)
        twm.stop_socket(market)
        wait_for(lambda: subscriptions(paper) == 0, timeout=10)
    finally:
        twm.stop()
        twm.join(10)


# -- ccxt ----------------------------------------------------------------------------------------


def _ccxt_options(paper: EmbeddedPaper) -> dict[str, Any]:
    return {"apiKey": KEY, "secret": SECRET,
            "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False, "fetchMargins": False}}  # fmt: skip


def _ccxt_urls(ex: Any, paper: EmbeddedPaper) -> None:
    ex.set_sandbox_mode(True)  # replaces urls["api"]: override afterwards
    ex.urls["api"]["public"] = paper.rest_url + "/v3"
    ex.urls["api"]["private"] = paper.rest_url + "/v3"
    ex.urls["api"]["v1"] = paper.rest_url + "/v1"
    if "ws" in ex.urls["api"]:
        ex.urls["api"]["ws"]["spot"] = paper.stream_url + "ws"
        ex.urls["api"]["ws"]["ws-api"]["spot"] = paper.ws_api_url


def test_ccxt_rest(paper: EmbeddedPaper, rest: Rest) -> None:
    import ccxt

    ex = ccxt.binance(_ccxt_options(paper))
    _ccxt_urls(ex, paper)
    ex.load_markets()
    market = ex.market("BTC/USDT")
    assert market["precision"]["amount"] == 1e-05 and market["limits"]["cost"]["min"] == 5.0
    ob = ex.fetch_order_book("BTC/USDT", 5)
    assert len(ob["bids"]) == 5 and ob["nonce"] > 0
    assert ex.fetch_ticker("BTC/USDT")["bid"] > 0
    free = ex.fetch_balance()["USDT"]["free"]
    bid, ask = passive_prices(rest)

    o = ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(bid))
    assert o["status"] == "open"
    assert ex.fetch_order(o["id"], "BTC/USDT")["status"] == "open"
    assert o["id"] in [x["id"] for x in ex.fetch_open_orders("BTC/USDT")]
    assert ex.cancel_order(o["id"], "BTC/USDT")["status"] == "canceled"  # DELETE with a query string
    with pytest.raises(ccxt.OrderNotFound):
        ex.cancel_order(o["id"], "BTC/USDT")
    with pytest.raises(ccxt.InsufficientFunds):
        ex.create_order("BTC/USDT", "limit", "buy", 100, float(bid))
    with pytest.raises(ccxt.OrderImmediatelyFillable):  # postOnly -> LIMIT_MAKER crossing the book
        ex.create_order("BTC/USDT", "limit", "buy", 0.001, float(ask), {"postOnly": True})
    with pytest.raises(ccxt.BadRequest, match="Filter failure: NOTIONAL"):  # ccxt's mapping of -1013
        ex.create_order("BTC/USDT", "limit", "buy", 0.00001, float(bid))
    assert ex.fetch_balance()["USDT"]["free"] == free

    filled = ex.create_order("BTC/USDT", "market", "buy", 0.001)
    assert filled["status"] == "closed" and filled["filled"] == 0.001
    assert filled["id"] in [t["order"] for t in ex.fetch_my_trades("BTC/USDT")]
    assert ex.fetch_balance()["BTC"]["free"] > 0

    wrong = ccxt.binance({**_ccxt_options(paper), "secret": "not-the-secret"})
    _ccxt_urls(wrong, paper)
    wrong.markets = ex.markets
    wrong.markets_by_id = ex.markets_by_id
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_balance()


def test_ccxt_pro_order_book_and_orders(paper: EmbeddedPaper, rest: Rest, stepper: None) -> None:
    import ccxt.pro

    async def run() -> tuple[Any, Any]:
        ex = ccxt.pro.binance(_ccxt_options(paper))
        _ccxt_urls(ex, paper)
        try:
            await ex.load_markets()
            book = None
            for _ in range(5):  # /ws/0 + SUBSCRIBE depth@100ms, then REST depth limit 1000, diffs applied
                book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 10)
            watcher = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))  # WS API subscribe.signature
            await asyncio.sleep(0.5)
            await asyncio.to_thread(lambda: rest.order(side="SELL", type="MARKET", quantity="0.001"))
            orders = await asyncio.wait_for(watcher, 10)
            return book, orders
        finally:
            await ex.close()

    book, orders = asyncio.run(run())
    assert book["bids"][0][0] < book["asks"][0][0] and book["nonce"] > 0
    assert orders and orders[-1]["side"] == "sell" and orders[-1]["symbol"] == "BTC/USDT"


# -- binance-sdk-spot ----------------------------------------------------------------------------


def test_binance_sdk_spot(paper: EmbeddedPaper, rest: Rest) -> None:
    from binance_common.configuration import (
        ConfigurationRestAPI,
        ConfigurationWebSocketAPI,
        ConfigurationWebSocketStreams,
    )
    from binance_common.errors import BadRequestError
    from binance_sdk_spot.spot import Spot

    client = Spot(
        config_rest_api=ConfigurationRestAPI(
            api_key=KEY, api_secret=SECRET, base_path=paper.base_url, timeout=5000
        ),
        config_ws_api=ConfigurationWebSocketAPI(api_key=KEY, api_secret=SECRET, stream_url=paper.ws_api_url),
        config_ws_streams=ConfigurationWebSocketStreams(
            stream_url=paper.base_url.replace("http://", "ws://")
        ),
    )
    api = client.rest_api
    api.ping()
    bid, _ = passive_prices(rest)
    placed = api.new_order(
        symbol=SYMBOL,
        side="BUY",
        type="LIMIT",
        time_in_force="GTC",
        quantity=Decimal("0.001"),
        price=Decimal(bid),
    )  # fmt: skip  (all params in the query)
    order = placed.data()
    assert order.status == "NEW"
    assert any(r.rateLimitType == "ORDERS" for r in placed.rate_limits)
    assert order.order_id in [o.order_id for o in api.get_open_orders(symbol=SYMBOL).data()]
    assert api.get_order(symbol=SYMBOL, order_id=order.order_id).data().status == "NEW"
    assert api.delete_order(symbol=SYMBOL, order_id=order.order_id).data().status == "CANCELED"
    with pytest.raises(BadRequestError, match="Unknown order sent"):  # HTTP 400, JSON body parsed
        api.delete_order(symbol=SYMBOL, order_id=order.order_id)
    usdt = next(b for b in api.get_account().data().balances if b.asset == "USDT")
    assert Decimal(usdt.free) > 0

    async def ws() -> tuple[list[Any], list[Any], Any]:
        conn = await client.websocket_api.create_connection()
        events: list[Any] = []
        tickers: list[Any] = []
        try:
            sub = await conn.user_data_stream_subscribe_signature()
            sub.stream.on("message", events.append)
            r = await conn.order_place(symbol=SYMBOL, side="BUY", type="MARKET", quantity=0.001)
            streams = await client.websocket_streams.create_connection()  # /stream + SUBSCRIBE (uuid ids)
            try:
                handle = await streams.book_ticker(symbol="btcusdt")
                handle.on("message", tickers.append)
                await asyncio.sleep(0.3)
                await asyncio.to_thread(paper.step, 300)
                for _ in range(100):
                    if tickers and len(events) >= 2:
                        break
                    await asyncio.sleep(0.05)
            finally:
                await streams.close_connection()
            return events, tickers, r
        finally:
            await conn.close_connection()

    events, tickers, placed_ws = asyncio.run(ws())
    assert placed_ws.data().result.status == "FILLED"
    assert len(events) >= 2  # executionReport(s) + outboundAccountPosition via {"subscriptionId","event"}
    assert tickers and tickers[0].s == SYMBOL
