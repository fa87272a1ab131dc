"""The served market feed over the shipped replay: a client that syncs like Binance's docs say
(REST snapshot + diffs with ``U == previous u + 1``) ends up with exactly the venue's book, own
orders included; bookTickers share the id counter and show that book; the book is never crossed."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from botcore_exchange_paper.config import AccountSpec, PaperConfig
from botcore_exchange_paper.testing import Recorder
from botcore_exchange_paper.venue import Venue


def _apply(book: dict[str, dict[Decimal, Decimal]], side: str, levels: list[list[str]]) -> None:
    for p, q in levels:
        if Decimal(q) == 0:
            book[side].pop(Decimal(p), None)
        else:
            book[side][Decimal(p)] = Decimal(q)


def _top(book: dict[str, dict[Decimal, Decimal]]) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    bp, ap = max(book["b"]), min(book["a"])
    return bp, book["b"][bp], ap, book["a"][ap]


def test_client_side_book_from_snapshot_and_diffs_matches_the_venue() -> None:
    cfg = PaperConfig(speed=0, accounts=[AccountSpec("k", "s", {"USDT": Decimal(1_000_000), "BTC": Decimal(20)})])
    v = Venue(cfg, clock=lambda: 1)
    rec = Recorder()
    v.add_listener(rec)
    a = v.account_for_key("k")
    assert a is not None
    rng = random.Random(7)
    v.step(1500)
    snap = v.depth("BTCUSDT", 5000)
    book = {"b": {}, "a": {}}  # type: dict[str, dict[Decimal, Decimal]]
    _apply(book, "b", snap["bids"])
    _apply(book, "a", snap["asks"])
    mark = len(rec.market)
    placed = 0
    for _ in range(40):
        v.step(rng.randint(20, 120))
        top: Any = v.book_ticker("BTCUSDT")
        bid, ask = Decimal(top["bidPrice"]), Decimal(top["askPrice"])
        r = rng.random()
        try:
            if r < 0.4:
                side = rng.choice(["BUY", "SELL"])
                px = bid - Decimal("0.01") * rng.randint(0, 3) if side == "BUY" else ask + Decimal("0.01") * rng.randint(0, 3)
                v.place_order(a, {"symbol": "BTCUSDT", "side": side, "type": "LIMIT_MAKER", "quantity": "0.01",
                                  "price": str(px)})
                placed += 1
            elif r < 0.6:
                v.place_order(a, {"symbol": "BTCUSDT", "side": rng.choice(["BUY", "SELL"]), "type": "MARKET",
                                  "quantity": "0.3"})
            elif r < 0.8 and v.open_orders(a):
                o = rng.choice(v.open_orders(a))
                v.cancel_order(a, {"symbol": "BTCUSDT", "orderId": str(o["orderId"])})
            else:  # an own order inside the spread becomes the served best alone
                if ask - bid > Decimal("0.01"):
                    v.place_order(a, {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT_MAKER",
                                      "quantity": "0.02", "price": str(bid + Decimal("0.01"))})
        except Exception as exc:  # a LIMIT_MAKER racing the touch may be rejected; that is Binance behaviour
            assert getattr(exc, "code", None) == -2010, exc
    final = v.depth("BTCUSDT", 5000)
    assert placed > 5
    last_u = snap["lastUpdateId"]
    checked_tickers = 0
    for stream, payload in rec.market[mark:]:
        if stream.endswith("@depth@100ms"):
            if payload["u"] <= snap["lastUpdateId"]:
                continue
            assert payload["U"] == last_u + 1, "served diffs must be contiguous"
            _apply(book, "b", payload["b"])
            _apply(book, "a", payload["a"])
            last_u = payload["u"]
        elif stream.endswith("@bookTicker"):
            assert Decimal(payload["b"]) < Decimal(payload["a"]), "served book crossed"
            if payload["u"] == last_u:
                assert _top(book) == (Decimal(payload["b"]), Decimal(payload["B"]), Decimal(payload["a"]),
                                      Decimal(payload["A"]))
                checked_tickers += 1
    assert last_u == final["lastUpdateId"]
    assert checked_tickers > 10
    n = min(len(final["bids"]), len(final["asks"]), 1000)
    mine_b = sorted(book["b"].items(), reverse=True)[:n]
    mine_a = sorted(book["a"].items())[:n]
    assert [(Decimal(p), Decimal(q)) for p, q in final["bids"][:n]] == mine_b
    assert [(Decimal(p), Decimal(q)) for p, q in final["asks"][:n]] == mine_a


def test_rest_depth_aligns_the_next_diff_and_trades_are_published() -> None:
    v = Venue(PaperConfig(speed=0), clock=lambda: 1)
    rec = Recorder()
    v.add_listener(rec)
    v.step(300)
    d = v.depth("BTCUSDT", 10)
    v.step(300)
    diffs = [p for s, p in rec.market if s.endswith("@depth@100ms") and p["u"] > d["lastUpdateId"]]
    assert diffs and diffs[0]["U"] == d["lastUpdateId"] + 1  # python-binance's strict first-event rule
    trades = rec.streams("@trade")
    aggs = rec.streams("@aggTrade")
    assert trades and aggs
    assert all(t["E"] == 1 and t["T"] == 1 for t in trades)  # venue clock, not the 2024 times
    ids = [t["t"] for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    covered = [i for g in aggs for i in range(g["f"], g["l"] + 1)]
    assert covered == ids  # every print in exactly one aggTrade, in order
    assert sum(Decimal(g["q"]) for g in aggs) == sum(Decimal(t["q"]) for t in trades)
