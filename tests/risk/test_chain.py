"""The chain: first veto wins, shadow (per check, by name, global) logs and counts but never denies,
halts are polled and logged once per transition, fills fan out."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from botcore_risk_basic.chain import RiskChain
from botcore_risk_basic.checks import DrawdownCheck, MaxOrderNotionalCheck, MaxPositionCheck, PriceBandCheck
from risk_support import D, RiskCtx, fill, order

from botcore.contracts import StrategyContext
from botcore.model import Fill, OrderRequest, Side


class Spy:
    """A third-party style check: counts calls, vetoes when told."""

    def __init__(self, name: str, reason: str | None = None) -> None:
        self.name = name
        self.reason = reason
        self.calls = 0
        self.fills: list[Fill] = []

    def check(self, order: OrderRequest, ctx: StrategyContext) -> str | None:
        self.calls += 1
        return self.reason

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> None:
        self.fills.append(fill)


def _ctx() -> RiskCtx:
    ctx = RiskCtx()
    ctx.set_mid("BTCUSDT", "59999.99", "60000.01")
    return ctx


def test_first_veto_wins_and_stops_the_chain(caplog: pytest.LogCaptureFixture) -> None:
    first, second, third = Spy("a"), Spy("b", "too big"), Spy("c", "never asked")
    chain = RiskChain([first, second, third])
    with caplog.at_level(logging.INFO, logger="botcore.risk"):
        assert chain.check(order(), _ctx()) == "b: too big"
    assert (first.calls, second.calls, third.calls) == (1, 1, 0)
    assert chain.vetoes == {"b": 1} and not chain.shadow_vetoes
    (rec,) = caplog.records
    assert rec.levelno == logging.WARNING and rec.name == "botcore.risk"
    msg = rec.getMessage()
    for part in (
        "risk veto check=b",
        "shadow=false",
        "symbol=BTCUSDT",
        "side=BUY",
        "price=60000",
        "qty=0.001",
        "strategy=mm",
        "cid=cid-1",
        "reason='too big'",
    ):
        assert part in msg, part
    assert (rec.risk_check, rec.risk_shadow, rec.risk_reason) == ("b", False, "too big")  # type: ignore[attr-defined]


def test_everything_passes() -> None:
    chain = RiskChain([MaxOrderNotionalCheck.from_params({"max_notional": "1000"}), Spy("x")])
    assert chain.check(order(), _ctx()) is None
    assert not chain.vetoes


@pytest.mark.parametrize(
    ("chain_shadow", "check_shadow", "shadowed"),
    [
        (False, False, False),
        (False, True, True),  # per check: the attribute the host sets from the entry's `shadow:`
        (["max_order_notional"], False, True),  # per check, by name
        (["other"], False, False),
        (True, False, True),  # global
    ],
)
def test_shadow_logs_and_counts_without_denying(
    chain_shadow: bool | list[str], check_shadow: bool, shadowed: bool, caplog: pytest.LogCaptureFixture
) -> None:
    after = Spy("after")
    notional = MaxOrderNotionalCheck.from_params({"max_notional": "10"})
    notional.shadow = check_shadow
    chain = RiskChain([notional, after], shadow=chain_shadow)
    with caplog.at_level(logging.INFO, logger="botcore.risk"):
        result = chain.check(order(qty="0.001"), _ctx())  # notional 60 > 10
    if shadowed:
        assert result is None
        assert after.calls == 1  # the chain went on
        assert chain.shadow_vetoes == {"max_order_notional": 1} and not chain.vetoes
        assert caplog.records[0].levelno == logging.INFO
    else:
        assert result is not None and result.startswith("max_order_notional: order notional 60")
        assert after.calls == 0
        assert chain.vetoes == {"max_order_notional": 1} and not chain.shadow_vetoes
        assert caplog.records[0].levelno == logging.WARNING
    assert f"shadow={str(shadowed).lower()}" in caplog.records[0].getMessage()


def test_a_shadow_veto_does_not_hide_a_real_one() -> None:
    band = PriceBandCheck.from_params({"max_bps": 1})
    chain = RiskChain([band, MaxPositionCheck.from_params({"max_position": "0.0001"})], shadow=["price_band"])
    assert chain.check(order(price="59000.00"), _ctx()) == (
        "max_position: position 0.001 after BUY 0.001 BTCUSDT would exceed max_position 0.0001"
    )
    assert chain.shadow_vetoes == {"price_band": 1} and chain.vetoes == {"max_position": 1}


def test_named_checks_count_separately() -> None:
    tight = MaxPositionCheck.from_params({"max_position": "0.0001"})
    assert tight.name == "max_position"
    tight.name = "tight"  # the host names it after the entry's `name:`
    chain = RiskChain([tight])
    chain.check(order(), _ctx())
    assert chain.vetoes == {"tight": 1}


def test_halts_are_polled_logged_once_and_shadowable(caplog: pytest.LogCaptureFixture) -> None:
    real = DrawdownCheck.from_params({"max_drawdown": "10", "resume_after": 0})
    shadow = DrawdownCheck.from_params({"max_drawdown": "5"})
    shadow.name, shadow.shadow = "dd-shadow", True
    spy = Spy("spy")
    chain = RiskChain([shadow, spy, real])
    ctx = _ctx()
    chain.on_fill(fill(Side.BUY, "1", "60000.00"), ctx)
    assert len(spy.fills) == 1
    with caplog.at_level(logging.INFO, logger="botcore.risk"):
        ctx.set_mid("BTCUSDT", "59993.99", "59994.01")  # down 6: only the shadow check halts
        assert chain.halted(ctx) is None
        assert chain.halted(ctx) is None
        ctx.set_mid("BTCUSDT", "59988.99", "59989.01")  # down 11: the real one halts
        reason = chain.halted(ctx)
        assert reason is not None and reason.startswith("drawdown: drawdown 11")
        assert chain.check(order(), ctx) is not None  # a halted check also vetoes orders
        ctx.set_mid("BTCUSDT", "59995.00", "59995.02")  # back within 10 of the mark
        assert chain.halted(ctx) is None
    lines = [r.getMessage() for r in caplog.records if "halt" in r.getMessage()]
    chain_lines = [m for m in lines if m.startswith("risk halted") or m.startswith("risk halt lifted")]
    assert chain_lines == [
        "risk halted check=dd-shadow shadow=true reason='drawdown 6 > max_drawdown 5 "
        "(equity -6, high-water mark 0)'",
        "risk halted check=drawdown shadow=false reason='drawdown 11 > max_drawdown 10 "
        "(equity -11, high-water mark 0)'",
        "risk halt lifted check=drawdown shadow=false",
    ]
    assert chain.stats()["halted"] == {"dd-shadow": shadow.halt_reason}


def test_checks_satisfy_the_contract() -> None:
    from botcore.contracts import RiskCheck

    check = MaxPositionCheck.from_params({"max_position": Decimal(1)})
    assert isinstance(check, RiskCheck)
    assert repr(check) == "MaxPositionCheck(name='max_position', shadow=False)"
    assert D(1) == check.params.max_position  # type: ignore[attr-defined]
