"""quoting.diff: keep what matches, cancel the rest, place what is missing (table-driven)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botcore.model import Quote, Side
from botcore.quoting import diff, pair_replacements

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


# ------------------------------------------------------------------------------------------------
# pair_replacements: a cancel and a placement on the same side become one cancel-replace
# ------------------------------------------------------------------------------------------------

PAIR_CASES = [
    # (id, cancels, places (indexes into QUOTES), not replaceable, pairs (cancel, place idx), cancels left, places left)
    ("nothing to cancel", [], [0], (), [], [], [0]),
    ("nothing to place", [o("b", B, "99")], [], (), [], ["b"], []),
    ("same side pairs", [o("b", B, "99")], [0], (), [("b", 0)], [], []),
    ("other side does not pair", [o("a", A, "102")], [0], (), [], ["a"], [0]),
    ("one pair per side", [o("b", B, "99"), o("a", A, "102")], [0, 1], (), [("b", 0), ("a", 1)], [], []),
    ("extra cancel left alone", [o("b1", B, "99"), o("b2", B, "98")], [0], (), [("b1", 0)], ["b2"], []),
    ("extra placement left alone, levels in order", [o("b", B, "99")], [0, 2], (), [("b", 0)], [], [2]),
    ("not replaceable is skipped", [o("x", B, "99"), o("b", B, "98")], [0], ("x",), [("b", 0)], ["x"], []),
    ("nothing replaceable", [o("x", B, "99")], [0], ("x",), [], ["x"], [0]),
    (
        "mixed sides keep their order",
        [o("b1", B, "99"), o("a1", A, "102"), o("b2", B, "98")],
        [1, 0, 3],
        (),
        [("a1", 1), ("b1", 0)],
        ["b2"],
        [3],
    ),
]
QUOTES = [q(B, "100", level=0), q(A, "101", level=0), q(B, "99.5", level=1), q(A, "101.5", level=1)]


@pytest.mark.parametrize(
    ("cancels", "places", "stuck", "pairs", "left_c", "left_p"),
    [c[1:] for c in PAIR_CASES],
    ids=[c[0] for c in PAIR_CASES],
)
def test_pair_replacements(
    cancels: list[Live],
    places: list[int],
    stuck: tuple[str, ...],
    pairs: list[tuple[str, int]],
    left_c: list[str],
    left_p: list[int],
) -> None:
    quotes = [QUOTES[i] for i in places]
    got_pairs, got_c, got_p = pair_replacements(cancels, quotes, lambda x: x.name not in stuck)
    assert [(c.name, QUOTES.index(p)) for c, p in got_pairs] == pairs
    assert [c.name for c in got_c] == left_c
    assert got_p == [QUOTES[i] for i in left_p]


@given(
    st.lists(st.builds(lambda s, p: Live("o", s, p, Decimal(1)), _sides, _prices), max_size=6),
    st.lists(st.builds(Quote, _sides, _prices, _qtys), max_size=6),
    st.sets(st.integers(0, 5)),
)
def test_pairing_partitions_its_inputs(cancels: list[Live], quotes: list[Quote], stuck: set[int]) -> None:
    named = [Live(f"c{i}", c.side, c.price, c.qty) for i, c in enumerate(cancels)]
    blocked = {f"c{i}" for i in stuck}
    pairs, left_c, left_p = pair_replacements(named, quotes, lambda x: x.name not in blocked)
    assert all(c.side == p.side and c.name not in blocked for c, p in pairs)
    # every cancel and every placement ends up exactly once, unpaired ones in their original order
    assert len({c.name for c, _ in pairs}) == len(pairs)
    assert sorted([c.name for c, _ in pairs] + [c.name for c in left_c]) == sorted(c.name for c in named)
    assert [c.name for c in left_c] == [c.name for c in named if c in left_c]
    assert sorted(map(id, [p for _, p in pairs] + left_p)) == sorted(map(id, quotes))
    assert [id(p) for p in left_p] == [id(p) for p in quotes if any(p is x for x in left_p)]
    # maximal: nothing left could still pair
    assert not any(c.side == p.side and c.name not in blocked for c in left_c for p in left_p)
