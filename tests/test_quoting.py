"""quoting.diff: keep what matches, cancel the rest, place what is missing (table-driven)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botcore.model import Quote, Side
from botcore.quoting import diff

B, A = Side.BUY, Side.SELL
TICK = Decimal("0.01")


@dataclass(frozen=True)
class Live:
    name: str
    side: Side
    price: Decimal
    qty: Decimal


def q(side: Side, price: str, qty: str = "1", level: int = 0) -> Quote:
    return Quote(side, Decimal(price), Decimal(qty), level)


def o(name: str, side: Side, price: str, qty: str = "1") -> Live:
    return Live(name, side, Decimal(price), Decimal(qty))


CASES = [
    # (id, desired, live, tolerance_ticks, expected cancels (names), expected places (indexes into desired))
    ("nothing live", [q(B, "100"), q(A, "101")], [], 0, [], [0, 1]),
    ("all match", [q(B, "100"), q(A, "101")], [o("b", B, "100"), o("a", A, "101")], 0, [], []),
    ("empty desired cancels all", [], [o("b", B, "100"), o("a", A, "101")], 0, ["b", "a"], []),
    ("price moved", [q(B, "100.01"), q(A, "101")], [o("b", B, "100"), o("a", A, "101")], 0, ["b"], [0]),
    ("within tolerance kept", [q(B, "100.02")], [o("b", B, "100")], 2, [], []),
    ("outside tolerance", [q(B, "100.03")], [o("b", B, "100")], 2, ["b"], [0]),
    ("qty differs", [q(B, "100", "2")], [o("b", B, "100", "1")], 0, ["b"], [0]),
    ("side differs", [q(A, "100")], [o("b", B, "100")], 0, ["b"], [0]),
    (
        "closest live order wins within tolerance",
        [q(B, "100.00")],
        [o("far", B, "100.02"), o("near", B, "99.99")],
        3,
        ["far"],
        [],
    ),
    (
        "each live order serves one quote",
        [q(B, "100", level=0), q(B, "100", level=1)],
        [o("b", B, "100")],
        0,
        [],
        [1],
    ),
    (
        "levels placed in the order given",
        [q(B, "100", level=0), q(B, "99", level=1), q(B, "98", level=2)],
        [o("mid", B, "99")],
        0,
        [],
        [0, 2],
    ),
    (
        "duplicates live: extra one cancelled",
        [q(B, "100")],
        [o("x", B, "100"), o("y", B, "100")],
        0,
        ["y"],
        [],
    ),
]


@pytest.mark.parametrize(
    ("desired", "live", "tol", "cancels", "places"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_diff(
    desired: list[Quote], live: list[Live], tol: int, cancels: list[str], places: list[int]
) -> None:
    to_cancel, to_place = diff(desired, live, tol, TICK)
    assert [x.name for x in to_cancel] == cancels
    assert to_place == [desired[i] for i in places]


def test_diff_is_pure() -> None:
    desired = [q(B, "100"), q(A, "101")]
    live = [o("b", B, "100"), o("old", A, "102")]
    before = (list(desired), list(live))
    first = diff(desired, live, 0, TICK)
    assert (desired, live) == before
    assert diff(desired, live, 0, TICK) == first


def test_negative_tolerance_is_an_error() -> None:
    with pytest.raises(ValueError):
        diff([q(B, "1")], [o("b", B, "1")], -1, TICK)


_sides = st.sampled_from([B, A])
_prices = st.integers(9990, 10010).map(lambda t: Decimal(t) / 100)
_qtys = st.sampled_from([Decimal("1"), Decimal("2")])


@given(
    st.lists(st.builds(Quote, _sides, _prices, _qtys), max_size=6),
    st.lists(st.builds(lambda s, p, qty: Live("o", s, p, qty), _sides, _prices, _qtys), max_size=6),
)
def test_exact_fast_path_agrees_with_the_tolerance_path(desired: list[Quote], live: list[Live]) -> None:
    fast = diff(desired, live, 0, TICK)
    slow = diff(desired, live, 1, Decimal(0))  # tolerance of one zero-sized tick: exact matching
    assert [(x.side, x.price, x.qty) for x in fast[0]] == [(x.side, x.price, x.qty) for x in slow[0]]
    assert fast[1] == slow[1]
    # invariants: every live order is kept or cancelled; placed + kept covers every quote
    assert len(live) - len(fast[0]) + len(fast[1]) == len(desired)
