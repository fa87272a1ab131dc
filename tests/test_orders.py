"""Client order ids and the order tracker's state machine (incl. out-of-order arrival)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from botcore.model import ExecutionReport, OrderOutcome, OrderRequest, OrderStatus, Side
from botcore.orders import (
    ALLOWED,
    APPLIED,
    CLIENT_ID_RE,
    DUPLICATE,
    FOREIGN,
    ILLEGAL,
    LIVE_STATUSES,
    STALE,
    ClientOrderIds,
    OrderTracker,
)

S = OrderStatus
D = Decimal


# ------------------------------------------------------------------------------------------------
# Client order ids
# ------------------------------------------------------------------------------------------------


def test_ids_are_deterministic_unique_and_binance_legal() -> None:
    ids = ClientOrderIds("r7f3k2a")
    made = [ids.next() for _ in range(1000)]
    assert len(set(made)) == 1000
    assert made[0] == "bcr7f3k2a-1"
    assert all(CLIENT_ID_RE.match(c) and len(c) <= 36 for c in made)
    # reproducible from (run_id, seq): a restarted process rebuilds the same ids
    again = ClientOrderIds("r7f3k2a")
    assert [again.make(i) for i in range(1, 1001)] == made


def test_ids_parse_tells_ours_from_foreign() -> None:
    ids = ClientOrderIds("abc")
    cid = ids.next()
    assert ids.parse(cid) == 1
    assert ids.is_ours(ids.make(42))
    other_run = ClientOrderIds("abd")
    assert not ids.is_ours(other_run.make(1))
    assert not ids.is_ours("x-HNA2TXFJ1234")  # python-binance's own ids
    assert ids.parse("bcabc-") is None
    assert ids.parse("bcabc-01") is None  # not a canonical id of ours
    assert ids.parse("bcabc-1x") is None


def test_ids_stay_within_36_chars_at_max_run_length() -> None:
    ids = ClientOrderIds("a" * 20, prefix="botcore.")
    assert len(ids.make(10**5)) <= 36
    with pytest.raises(ValueError, match="longer than 36"):
        ids.make(10**7)


@pytest.mark.parametrize("run_id", ["", "has-dash", "x" * 21, "sp ace"])
def test_ids_reject_bad_run_ids(run_id: str) -> None:
    with pytest.raises(ValueError):
        ClientOrderIds(run_id)


@pytest.mark.parametrize("prefix", ["way-too-long-prefix", "a:b", "a/b", "a b"])
def test_ids_reject_bad_prefix(prefix: str) -> None:
    """Too long, or characters that get percent-encoded on the wire (signature mismatch risk)."""
    with pytest.raises(ValueError):
        ClientOrderIds("abc", prefix=prefix)


# ------------------------------------------------------------------------------------------------
# Tracker helpers
# ------------------------------------------------------------------------------------------------

_seq = iter(range(1, 10**9))


def _order(strategy: str = "mm", symbol: str = "BTCUSDT", qty: str = "1", price: str = "100") -> OrderRequest:
    return OrderRequest(
        symbol, Side.BUY, D(qty), D(price), client_order_id=f"c{next(_seq)}", strategy=strategy
    )


def _report(cid: str, status: S, cum: str = "0", exec_type: str = "NEW") -> ExecutionReport:
    return ExecutionReport(
        symbol="BTCUSDT",
        client_order_id=cid,
        order_id=7,
        side=Side.BUY,
        order_type="LIMIT_MAKER",
        status=status,
        execution_type=exec_type,
        price=D(100),
        orig_qty=D(1),
        cum_qty=D(cum),
        cum_quote=D(cum) * 100,
    )


def _outcome(cid: str, status: S, action: str = "new", cum: str = "0") -> OrderOutcome:
    return OrderOutcome(action, "BTCUSDT", cid, status, order_id=7, cum_qty=D(cum))


def _tracked(status: S) -> tuple[OrderTracker, str]:
    """A tracker holding one order driven into ``status`` through legal steps."""
    t = OrderTracker()
    cid = t.track(_order()).client_order_id
    steps = {
        S.PENDING_NEW: [],
        S.NEW: [_outcome(cid, S.NEW)],
        S.PARTIALLY_FILLED: [_outcome(cid, S.NEW), _report(cid, S.PARTIALLY_FILLED, "0.4", "TRADE")],
        S.UNKNOWN: [_outcome(cid, S.UNKNOWN)],
        S.FILLED: [_report(cid, S.FILLED, "1", "TRADE")],
        S.CANCELED: [_outcome(cid, S.NEW), _report(cid, S.CANCELED, "0", "CANCELED")],
        S.REJECTED: [_outcome(cid, S.REJECTED)],
        S.EXPIRED: [_report(cid, S.EXPIRED, "0", "EXPIRED")],
    }
    if status is S.PENDING_CANCEL:
        t.on_outcome(_outcome(cid, S.NEW))
        assert t.request_cancel(cid)
    else:
        for step in steps[status]:
            (t.on_report if isinstance(step, ExecutionReport) else t.on_outcome)(step)  # type: ignore[operator]
    assert t.get(cid).status is status  # type: ignore[union-attr]
    return t, cid


# ------------------------------------------------------------------------------------------------
# Transition table
# ------------------------------------------------------------------------------------------------


def test_terminal_states_have_no_way_out_and_live_states_are_the_non_terminal_ones() -> None:
    for status, targets in ALLOWED.items():
        if status.is_terminal:
            assert targets == frozenset()
        else:
            assert status in LIVE_STATUSES
    assert {s for s in S if not s.is_terminal} == LIVE_STATUSES


@pytest.mark.parametrize(
    ("start", "update", "expected", "code"),
    [
        # normal life
        (S.PENDING_NEW, _outcome("", S.NEW), S.NEW, APPLIED),
        (S.PENDING_NEW, _outcome("", S.REJECTED), S.REJECTED, APPLIED),
        (S.PENDING_NEW, _outcome("", S.UNKNOWN), S.UNKNOWN, APPLIED),
        (S.PENDING_NEW, _report("", S.FILLED, "1", "TRADE"), S.FILLED, APPLIED),
        (S.PENDING_NEW, _report("", S.EXPIRED, "0", "EXPIRED"), S.EXPIRED, APPLIED),
        (S.NEW, _report("", S.PARTIALLY_FILLED, "0.5", "TRADE"), S.PARTIALLY_FILLED, APPLIED),
        (S.NEW, _report("", S.CANCELED, "0", "CANCELED"), S.CANCELED, APPLIED),
        (S.NEW, _report("", S.EXPIRED_IN_MATCH, "0", "EXPIRED"), S.EXPIRED_IN_MATCH, APPLIED),
        (S.PARTIALLY_FILLED, _report("", S.FILLED, "1", "TRADE"), S.FILLED, APPLIED),
        (S.PENDING_CANCEL, _outcome("", S.CANCELED, "cancel"), S.CANCELED, APPLIED),
        (S.PENDING_CANCEL, _report("", S.FILLED, "1", "TRADE"), S.FILLED, APPLIED),
        (S.PENDING_CANCEL, _outcome("", S.UNKNOWN, "cancel"), S.UNKNOWN, APPLIED),
        # a query may reveal anything
        (S.UNKNOWN, _outcome("", S.NEW, "query"), S.NEW, APPLIED),
        (S.UNKNOWN, _outcome("", S.PARTIALLY_FILLED, "query", "0.3"), S.PARTIALLY_FILLED, APPLIED),
        (S.UNKNOWN, _outcome("", S.FILLED, "query", "1"), S.FILLED, APPLIED),
        (S.UNKNOWN, _outcome("", S.CANCELED, "query"), S.CANCELED, APPLIED),
        # duplicates
        (S.NEW, _outcome("", S.NEW), S.NEW, DUPLICATE),
        (S.FILLED, _report("", S.FILLED, "1", "TRADE"), S.FILLED, DUPLICATE),
        # out of order: older news never regresses an order
        (S.PARTIALLY_FILLED, _outcome("", S.NEW), S.PARTIALLY_FILLED, STALE),  # ack after a fill
        (S.FILLED, _outcome("", S.NEW), S.FILLED, STALE),  # ack after the whole fill
        (S.CANCELED, _outcome("", S.NEW), S.CANCELED, STALE),
        (S.PENDING_CANCEL, _outcome("", S.NEW), S.PENDING_CANCEL, STALE),  # late ack, not a cancel reject
        # illegal: counted, not applied
        (S.NEW, _report("", S.REJECTED, "0", "REJECTED"), S.NEW, ILLEGAL),
        (S.PARTIALLY_FILLED, _outcome("", S.REJECTED), S.PARTIALLY_FILLED, ILLEGAL),
    ],
)
def test_transitions(start: S, update: OrderOutcome | ExecutionReport, expected: S, code: int) -> None:
    t, cid = _tracked(start)
    update = type(update)(
        **{**{f: getattr(update, f) for f in update.__struct_fields__}, "client_order_id": cid}
    )
    illegal_before = t.illegal
    got = t.on_report(update) if isinstance(update, ExecutionReport) else t.on_outcome(update)
    assert got == code
    assert t.get(cid).status is expected  # type: ignore[union-attr]
    assert t.illegal == illegal_before + (code == ILLEGAL)


def test_user_stream_report_before_rest_ack() -> None:
    t = OrderTracker()
    cid = t.track(_order()).client_order_id
    assert t.on_report(_report(cid, S.NEW)) == APPLIED
    assert t.on_outcome(_outcome(cid, S.NEW)) == DUPLICATE
    assert t.get(cid).status is S.NEW  # type: ignore[union-attr]
    assert t.get(cid).order_id == 7  # type: ignore[union-attr]


def test_cum_qty_is_monotonic_and_reports_with_less_are_ignored() -> None:
    t, cid = _tracked(S.NEW)
    t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.6", "TRADE"))
    assert t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.4", "TRADE")) == DUPLICATE
    o = t.get(cid)
    assert o is not None and o.cum_qty == D("0.6") and o.remaining == D("0.4")
    assert t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.8", "TRADE")) == APPLIED
    assert o.cum_qty == D("0.8")


def test_late_fill_report_after_cancel_updates_quantity_not_status() -> None:
    t, cid = _tracked(S.PENDING_CANCEL)
    t.on_outcome(_outcome(cid, S.CANCELED, "cancel"))
    assert t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.3", "TRADE")) == STALE
    o = t.get(cid)
    assert o is not None and o.status is S.CANCELED and o.cum_qty == D("0.3")


def test_partial_fill_while_cancel_in_flight_keeps_pending_cancel() -> None:
    t, cid = _tracked(S.PENDING_CANCEL)
    assert t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.2", "TRADE")) == APPLIED
    o = t.get(cid)
    assert o is not None and o.status is S.PENDING_CANCEL and o.cum_qty == D("0.2")
    assert not t.request_cancel(cid)  # never a second cancel


@pytest.mark.parametrize(("filled", "back_to"), [("0", S.NEW), ("0.5", S.PARTIALLY_FILLED)])
def test_cancel_rejected_returns_to_working_state(filled: str, back_to: S) -> None:
    t, cid = _tracked(S.NEW)
    if filled != "0":
        t.on_report(_report(cid, S.PARTIALLY_FILLED, filled, "TRADE"))
    assert t.request_cancel(cid)
    assert t.on_cancel_rejected(cid, "rate limited") == APPLIED
    assert t.get(cid).status is back_to  # type: ignore[union-attr]
    assert t.on_cancel_rejected(cid, "again") == STALE  # only from PENDING_CANCEL


def test_cancel_of_unacknowledged_or_unknown_order_is_deferred() -> None:
    t = OrderTracker()
    cid = t.track(_order()).client_order_id
    assert not t.request_cancel(cid)
    o = t.get(cid)
    assert o is not None and o.status is S.PENDING_NEW and o.cancel_wanted
    t2, cid2 = _tracked(S.UNKNOWN)
    assert not t2.request_cancel(cid2)
    assert t2.get(cid2).cancel_wanted  # type: ignore[union-attr]


def test_force_rejected_after_venue_says_no_such_order() -> None:
    t, cid = _tracked(S.UNKNOWN)
    assert t.force(cid, S.REJECTED, "does not exist") == APPLIED
    assert t.get(cid).status is S.REJECTED  # type: ignore[union-attr]
    assert t.live_count() == 0
    t2 = OrderTracker()
    cid2 = t2.track(_order()).client_order_id
    assert t2.force(cid2, S.PENDING_CANCEL, "nonsense") == ILLEGAL
    assert t2.illegal == 1


def test_foreign_and_unknown_ids() -> None:
    t = OrderTracker()
    assert t.on_report(_report("someone-else", S.NEW)) == FOREIGN
    assert t.on_outcome(_outcome("nobody", S.NEW)) == FOREIGN
    assert t.foreign == 2
    assert t.mark_unknown("nobody", "x") == FOREIGN
    assert not t.request_cancel("nobody")


def test_track_rejects_missing_and_reused_ids() -> None:
    t = OrderTracker()
    with pytest.raises(ValueError, match="no client order id"):
        t.track(OrderRequest("BTCUSDT", Side.BUY, D(1), D(1)))
    o = _order()
    t.track(o)
    with pytest.raises(ValueError, match="already used"):
        t.track(o)


def test_string_statuses_are_normalized() -> None:
    t, cid = _tracked(S.PENDING_NEW)
    out = OrderOutcome("new", "BTCUSDT", cid, "NEW")  # type: ignore[arg-type]
    assert t.on_outcome(out) == APPLIED
    assert t.get(cid).status is S.NEW  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------------
# Queries and bookkeeping
# ------------------------------------------------------------------------------------------------


def test_live_indexes_follow_the_state() -> None:
    t = OrderTracker()
    a = t.track(_order("mm")).client_order_id
    b = t.track(_order("mm")).client_order_id
    c = t.track(_order("other")).client_order_id
    d = t.track(_order("mm", symbol="ETHUSDT")).client_order_id
    assert {o.client_order_id for o in t.live("BTCUSDT", "mm")} == {a, b}
    assert set(t.live_map("BTCUSDT", "mm")) == {a, b}
    assert t.live_map("BTCUSDT", "nobody") == {}
    assert {o.client_order_id for o in t.live("BTCUSDT")} == {a, b, c}
    assert t.live_count() == 4 and t.live_count("ETHUSDT") == 1
    t.on_outcome(_outcome(b, S.UNKNOWN))
    assert [o.client_order_id for o in t.unknown()] == [b]
    t.on_outcome(_outcome(a, S.REJECTED))
    assert set(t.live_map("BTCUSDT", "mm")) == {b}
    assert t.get(a) is not None and t.get(a).status is S.REJECTED  # type: ignore[union-attr]
    assert len(t) == 4 and {o.client_order_id for o in t} == {a, b, c, d}


def test_finished_order_history_is_bounded() -> None:
    t = OrderTracker(history=3)
    cids = []
    for _ in range(5):
        cid = t.track(_order()).client_order_id
        t.on_outcome(_outcome(cid, S.REJECTED))
        cids.append(cid)
    assert len(t) == 3
    assert t.get(cids[0]) is None and t.get(cids[-1]) is not None
    assert t.on_report(_report(cids[0], S.CANCELED)) == FOREIGN  # forgotten
    assert t.on_report(_report(cids[-1], S.CANCELED)) == STALE  # remembered


def test_owner_check_runs_on_every_mutation() -> None:
    owner = threading.get_ident()
    calls = []

    def check() -> None:
        calls.append(1)
        if threading.get_ident() != owner:
            raise AssertionError("not the owner")

    t = OrderTracker(owner_check=check)
    cid = t.track(_order()).client_order_id
    t.on_outcome(_outcome(cid, S.NEW))
    assert calls
    errors: list[BaseException] = []

    def other() -> None:
        try:
            t.on_report(_report(cid, S.CANCELED))
        except AssertionError as exc:
            errors.append(exc)

    th = threading.Thread(target=other)
    th.start()
    th.join()
    assert errors and t.get(cid).status is S.NEW  # type: ignore[union-attr]


def test_version_moves_exactly_when_a_live_order_comes_goes_or_changes() -> None:
    """Readers cache what they derive from the live orders under ``version``: it must move on every
    change they could see (new order, status, filled quantity, retirement) and only then."""
    t = OrderTracker()
    v0 = t.version
    cid = t.track(_order()).client_order_id
    v1 = t.version
    assert v1 > v0
    t.on_outcome(_outcome(cid, S.NEW))
    v2 = t.version
    assert v2 > v1
    assert t.on_outcome(_outcome(cid, S.NEW)) == DUPLICATE and t.version == v2
    assert t.on_outcome(_outcome(cid, S.PENDING_NEW)) == DUPLICATE and t.version == v2
    t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.4", "TRADE"))
    v3 = t.version
    assert v3 > v2
    assert t.on_report(_report(cid, S.NEW)) == STALE and t.version == v3  # stale ack: nothing changed
    assert t.request_cancel(cid)
    v4 = t.version
    assert v4 > v3
    assert t.on_report(_report(cid, S.PARTIALLY_FILLED, "0.6", "TRADE")) == APPLIED  # fill during cancel
    v5 = t.version
    assert v5 > v4 and t.get(cid).status is S.PENDING_CANCEL  # type: ignore[union-attr]
    t.on_report(_report(cid, S.CANCELED, "0.6", "CANCELED"))
    assert t.version > v5 and t.live_count() == 0
    v6 = t.version
    t.on_report(_report(cid, S.CANCELED, "0.6", "CANCELED"))  # a duplicate for a retired order
    assert t.version == v6
