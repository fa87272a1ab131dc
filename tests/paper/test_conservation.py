"""Nothing is created or lost over a whole replay with many random orders.

The shipped BTCUSDT capture runs as fast as possible while three accounts send a seeded mix of
passive and marketable LIMIT (GTC/IOC/FOK), LIMIT_MAKER, MARKET by quantity and by quote amount,
cancels, cancelReplaces and "external" orders, with every STP mode. After every action:
- for every asset, the sum over users + market + fees is exactly what it was (Decimal-exact units);
- no user or fee balance is ever negative;
- each user's locked balance equals the sum of its open orders' remaining locks, and each open
  order's lock covers its remainder (BUY: price * leaves rounded up; SELL: leaves);
and at the end the user-data stream, replayed client-side, gives exactly the REST balances, every
order's executedQty equals the sum of its trades, and the fee account holds exactly the fees paid.
"""

from __future__ import annotations

import random
from collections import defaultdict
from decimal import Decimal
from typing import Any

from botcore_exchange_paper.accounts import UNIT_DP
from botcore_exchange_paper.config import AccountSpec, FillConfig, PaperConfig
from botcore_exchange_paper.errors import BinanceError
from botcore_exchange_paper.testing import Recorder
from botcore_exchange_paper.venue import Venue

KEYS = ("alice", "bob", "carol")
STP = ("EXPIRE_MAKER", "EXPIRE_TAKER", "EXPIRE_BOTH", "DECREMENT", "NONE")


def _check_invariants(v: Venue, totals: dict[str, int]) -> None:
    led = v.ledger
    for asset, total in totals.items():
        assert led.total(asset) == total, f"{asset} not conserved"
    for acct in [*led.users.values(), led.fees]:
        for bucket in (acct.free, acct.locked):
            for asset, amount in bucket.items():
                assert amount >= 0, f"negative {asset} on {acct!r}"
    need: dict[tuple[Any, str], int] = defaultdict(int)
    for o in v.open_order_objects():
        need[(o.account, o.lock_asset)] += o.locked_u
        spec = v.specs[o.symbol]
        if o.is_buy:
            assert o.locked_u >= spec.quote_ceil(o.price_u, o.leaves)
        else:
            assert o.locked_u == o.leaves
        assert o.leaves > 0
    for acct in led.users.values():
        for asset in acct.assets():
            assert acct.locked.get(asset, 0) == need.get((acct, asset), 0), f"{asset} lock drift on {acct!r}"


def _random_order(rng: random.Random, v: Venue) -> dict[str, str]:
    top: Any = v.book_ticker("BTCUSDT")
    bid, ask = Decimal(top["bidPrice"]), Decimal(top["askPrice"])
    side = rng.choice(["BUY", "SELL"])
    qty = str(Decimal(rng.randint(10, 3000)) / 10_000)  # 0.001 .. 0.3 BTC
    tick = Decimal("0.01")
    kind = rng.random()
    p: dict[str, str] = {"symbol": "BTCUSDT", "side": side}
    if rng.random() < 0.5:
        p["selfTradePreventionMode"] = rng.choice(STP)
    if kind < 0.45:  # passive, at or near the touch
        px = bid - tick * rng.randint(0, 5) if side == "BUY" else ask + tick * rng.randint(0, 5)
        p.update(type=rng.choice(["LIMIT", "LIMIT_MAKER"]), quantity=qty, price=str(px))
        if p["type"] == "LIMIT":
            p["timeInForce"] = "GTC"
    elif kind < 0.7:  # marketable limit
        px = ask + tick * rng.randint(0, 300) if side == "BUY" else bid - tick * rng.randint(0, 300)
        p.update(type="LIMIT", timeInForce=rng.choice(["GTC", "IOC", "FOK"]), quantity=qty, price=str(px))
    elif kind < 0.85:
        p.update(type="MARKET", quantity=qty)
    else:
        p.update(type="MARKET", quoteOrderQty=str(Decimal(rng.randint(600, 30_000)) / 100))
    return p


def test_whole_replay_conserves_every_unit() -> None:
    accounts = [AccountSpec(k, f"{k}-secret", {"USDT": Decimal("250000.12345678"), "BTC": Decimal("3.5")})
                for k in KEYS]
    cfg = PaperConfig(speed=0, accounts=accounts, maker_commission=Decimal("0.00075"),
                      taker_commission=Decimal("0.001"), fill=FillConfig(queue_model="power:3"))
    v = Venue(cfg, clock=lambda: 1)
    rec = Recorder()
    v.add_listener(rec)
    rng = random.Random(20240808)
    totals = {asset: v.ledger.total(asset) for asset in v.ledger.assets()}
    assert totals == {"USDT": 0, "BTC": 0}  # deposits come from the market account
    errors: dict[int, int] = defaultdict(int)
    actions = 0
    while not v.market_done:
        v.step(rng.randint(1, 150))
        for _ in range(rng.randint(1, 3)):
            acct = v.account_for_key(rng.choice(KEYS))
            assert acct is not None
            r = rng.random()
            try:
                if r < 0.6:
                    params = _random_order(rng, v)
                    if rng.random() < 0.05:
                        v.external_order(acct, params)
                    else:
                        v.place_order(acct, params)
                elif r < 0.8:
                    mine = v.open_orders(acct, "BTCUSDT")
                    if mine:
                        v.cancel_order(acct, {"symbol": "BTCUSDT", "orderId": str(rng.choice(mine)["orderId"])})
                elif r < 0.95:
                    mine = v.open_orders(acct, "BTCUSDT")
                    target = str(rng.choice(mine)["orderId"]) if mine and rng.random() < 0.9 else "999999"
                    params = _random_order(rng, v)
                    params.update(cancelOrderId=target,
                                  cancelReplaceMode=rng.choice(["STOP_ON_FAILURE", "ALLOW_FAILURE"]))
                    v.cancel_replace(acct, params)
                elif v.open_orders(acct, "BTCUSDT"):
                    v.cancel_open_orders(acct, {"symbol": "BTCUSDT"})
            except BinanceError as exc:
                errors[exc.code] += 1
                assert exc.code in (-2010, -2011, -2021, -2022, -1013), exc
            actions += 1
            _check_invariants(v, totals)
    assert v.events_processed > 99_000
    assert actions > 1000
    # the mix really exercised the engine
    fills = [r for r in rec.reports() if r["x"] == "TRADE"]
    assert sum(1 for r in fills if r["m"]) > 50 and sum(1 for r in fills if not r["m"]) > 200
    assert any(r["x"] == "TRADE_PREVENTION" for r in rec.reports())
    assert errors[-2010] > 0
    print(f"actions={actions} errors={dict(errors)} fills={len(fills)}")
    # client-side view from the user-data stream == REST balances
    for key in KEYS:
        acct = v.account_for_key(key)
        assert acct is not None
        seen: dict[str, tuple[str, str]] = {}
        for ev in rec.user_events(key, "outboundAccountPosition"):
            for b in ev["B"]:
                seen[b["a"]] = (b["f"], b["l"])
        rest = {b["asset"]: (b["free"], b["locked"]) for b in v.account_info(acct)["balances"]}
        assert seen == rest
        # executed quantities are the sum of the trades, and fees paid match the fee account
        per_order: dict[int, Decimal] = defaultdict(Decimal)
        from_id = 0
        while page := v.my_trades(acct, {"symbol": "BTCUSDT", "limit": "1000", "fromId": str(from_id)}):
            for t in page:
                per_order[t["orderId"]] += Decimal(t["qty"])
            from_id = page[-1]["id"] + 1
        for oid, qty in per_order.items():
            assert Decimal(v.query_order(acct, {"symbol": "BTCUSDT", "orderId": str(oid)})["executedQty"]) == qty
    paid: dict[str, Decimal] = defaultdict(Decimal)
    for key in KEYS:
        for r in rec.reports(key):
            if r["x"] == "TRADE":
                paid[r["N"]] += Decimal(r["n"])
    for asset, amount in paid.items():
        assert Decimal(v.ledger.fees.free.get(asset, 0)).scaleb(-UNIT_DP) == amount
