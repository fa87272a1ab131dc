"""Rate limits: scaled exchangeInfo limits, request weight 429 then 418 ban, unfilled order count -1015.

The limiter's clock is frozen inside one window so the fixed-window counters cannot roll over mid-test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botcore_exchange_paper.embedded import EmbeddedPaper
from paper_support import SYMBOL, Rest, Ws, open_order_ids, passive_prices, start_paper, ws_signed

SCALE = 0.03  # REQUEST_WEIGHT 6000 -> 180 / minute, ORDERS 100 -> 3 / 10 s
WINDOW_START = 1_800_000_000_000 - 1_800_000_000_000 % 86_400_000  # a day boundary: every window starts here


@pytest.fixture(scope="module")
def limited() -> Iterator[EmbeddedPaper]:
    p = start_paper(options={"rate_limit_scale": SCALE, "ban_after": 2, "ban_seconds": 60})
    yield p
    p.close()


def set_clock(paper: EmbeddedPaper, ms: int) -> None:
    def run() -> None:
        assert paper.server is not None
        paper.server.limiter.clock = lambda: ms
        paper.server.limiter.unban()

    paper.call(run)


def test_exchange_info_reports_the_scaled_limits(limited: EmbeddedPaper) -> None:
    set_clock(limited, WINDOW_START + 1_000)
    limits = Rest(limited).public("exchangeInfo", symbol=SYMBOL).json()["rateLimits"]
    assert {(x["rateLimitType"], x["intervalNum"], x["interval"], x["limit"]) for x in limits} == {
        ("REQUEST_WEIGHT", 1, "MINUTE", 180),
        ("ORDERS", 10, "SECOND", 3),
        ("ORDERS", 1, "DAY", 6000),
        ("RAW_REQUESTS", 5, "MINUTE", 1830),
    }


def test_weight_429_then_418_ban_for_a_client_that_keeps_going(limited: EmbeddedPaper) -> None:
    now = WINDOW_START + 61_000  # 1 s into a fresh minute
    set_clock(limited, now)
    rest = Rest(limited)
    statuses = [rest.public("exchangeInfo", symbol=SYMBOL).status_code for _ in range(9)]
    assert statuses == [200] * 9  # 9 x 20 = 180 = the limit
    r = rest.public("exchangeInfo", symbol=SYMBOL)
    assert r.status_code == 429
    assert r.json() == {
        "code": -1003,
        "msg": "Too much request weight used; current limit is 180 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    }
    assert r.headers["Retry-After"] == "59" and int(r.headers["X-MBX-USED-WEIGHT-1M"]) > 180
    assert [rest.public("ping").status_code for _ in range(2)] == [429, 429]  # ban_after = 2 more
    banned = rest.public("ping")
    assert banned.status_code == 418
    assert banned.json() == {
        "code": -1003,
        "msg": f"Way too much request weight used; IP banned until {now + 60_000}. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    }
    assert banned.headers["Retry-After"] == "60" and banned.headers["Content-Type"].startswith(
        "application/json"
    )
    assert rest.signed("GET", "account").status_code == 418  # every endpoint, signed or not
    ws = Ws(limited.ws_api_url)
    try:
        ws.send({"id": 1, "method": "ping"})
        r = ws.until(lambda m: m.get("id") == 1)[0]
        assert r["status"] == 418 and r["error"]["code"] == -1003 and r["error"]["data"]["retryAfter"] > 0
    finally:
        ws.close()
    # the ban ends; the next window starts empty
    set_clock(limited, now + 121_000)
    assert rest.public("ping").status_code == 200


def test_unfilled_order_count_limit(limited: EmbeddedPaper) -> None:
    set_clock(limited, WINDOW_START + 200_000)  # a fresh 10 s window
    rest = Rest(limited)
    bid, _ = passive_prices(rest)
    counts = []
    for _ in range(3):
        r = rest.limit("BUY", bid)
        assert r.status_code == 200, r.text
        counts.append(r.headers["X-MBX-ORDER-COUNT-10S"])
    assert counts == ["1", "2", "3"]
    before = open_order_ids(limited)
    r = rest.limit("BUY", bid)
    assert (r.status_code, r.json()) == (
        429,
        {"code": -1015, "msg": "Too many new orders; current limit is 3 orders per 10 SECOND."},
    )
    assert int(r.headers["Retry-After"]) == 10 and "X-MBX-ORDER-COUNT-10S" not in r.headers
    assert open_order_ids(limited) == before  # nothing was created
    # the WS API shares the counter
    ws = Ws(limited.ws_api_url)
    try:
        ws.send(ws_signed("order.place", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                          "quantity": "0.001", "price": bid}, req_id="o"))  # fmt: skip
        r = ws.until(lambda m: m.get("id") == "o")[0]
        assert r["status"] == 429 and r["error"]["code"] == -1015
        orders = [x for x in r["rateLimits"] if x["rateLimitType"] == "ORDERS" and x["interval"] == "SECOND"]
        assert orders[0]["count"] == 3
    finally:
        ws.close()
    # cancels are not orders; cancelReplace in CANCEL_ONLY mode cancels and reports the -1015
    assert rest.signed("DELETE", "order", {"symbol": SYMBOL, "orderId": before[0]}).status_code == 200
    cr = rest.signed("POST", "order/cancelReplace", {
        "symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": bid,
        "cancelReplaceMode": "STOP_ON_FAILURE", "cancelOrderId": before[1], "orderRateLimitExceededMode": "CANCEL_ONLY"})  # fmt: skip
    assert cr.status_code == 409
    body = cr.json()
    assert body["code"] == -2021 and body["data"]["cancelResult"] == "SUCCESS"
    assert body["data"]["newOrderResponse"] == {
        "code": -1015,
        "msg": "Too many new orders; current limit is 3 orders per 10 SECOND.",
    }
    rest.signed("DELETE", "openOrders", {"symbol": SYMBOL})


def test_first_fill_decrements_the_order_count(limited: EmbeddedPaper) -> None:
    set_clock(limited, WINDOW_START + 300_000)
    rest = Rest(limited)
    r = rest.order(side="BUY", type="MARKET", quantity="0.001")
    assert r.status_code == 200 and r.json()["status"] == "FILLED", r.text
    assert r.headers["X-MBX-ORDER-COUNT-10S"] == "0"
    bid, _ = passive_prices(rest)
    r = rest.limit("BUY", bid)
    assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    rest.signed("DELETE", "openOrders", {"symbol": SYMBOL})
