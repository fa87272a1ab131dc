"""The trade journal: WAL durability, idempotent fills, monotonic order states, restart data.

The crash test runs a child process that journals orders and fills in a loop, printing each
record only after its transaction committed, and SIGKILLs it at seeded random points: every
record it reported must be in the file, and the file must open cleanly.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path

import pytest

from botcore.journal import Journal, JournalError, PnlSample, connect_readonly
from botcore.model import (
    Balance,
    Drift,
    ExecutionReport,
    Fill,
    Instrument,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
)

D = Decimal
S = OrderStatus
SYM = "BTCUSDT"
INST = Instrument(SYM, "BTC", "USDT", D("0.01"), D("0.00001"))


def order(
    seq: int, prefix: str = "bcr1-", side: Side = Side.BUY, qty: str = "0.002", price: str = "100.1"
) -> OrderRequest:
    return OrderRequest(
        SYM, side, D(qty), D(price), OrderType.LIMIT_MAKER, None, f"{prefix}{seq}", "mm", "L0"
    )


def fill(cid: str, trade_id: int, qty: str = "0.001", price: str = "100.1", symbol: str = SYM) -> Fill:
    return Fill(
        symbol, cid, 7, trade_id, Side.BUY, D(price), D(qty), D("0.0001"), "USDT", True, 1_000 + trade_id
    )


def cancel_report(cid: str, status: S = S.CANCELED) -> ExecutionReport:
    return ExecutionReport(
        SYM, cid, 7, Side.BUY, "LIMIT_MAKER", status, "CANCELED", D("100.1"), D("0.002"), D(0), D(0)
    )


def status_of(path: Path, cid: str) -> tuple[str, str]:
    conn = connect_readonly(path)
    try:
        row = conn.execute("SELECT status, filled FROM orders WHERE client_order_id = ?", (cid,)).fetchone()
        return row[0], row[1]
    finally:
        conn.close()


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "runs" / "j.sqlite")  # the parent folder is created
    j.start_run(name="t", run_id="r1", id_prefix="bcr1-", instruments=[INST], started_ms=1_000)
    yield j
    j.close()


def test_file_is_wal_with_normal_sync_and_no_autocheckpoint(journal: Journal) -> None:
    other = sqlite3.connect(journal.path)
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    other.close()
    c = journal._conn  # the writer connection's per-connection settings
    assert c.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert c.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0


def test_fills_are_idempotent_per_symbol_and_trade_id(journal: Journal) -> None:
    journal.record_order(order(1))
    assert journal.record_fill(fill("bcr1-1", 10)) is True
    assert journal.record_fill(fill("bcr1-1", 10)) is False  # the stream and REST saw the same trade
    assert journal.record_fill(fill("x-1", 10, symbol="ETHUSDT")) is True  # ids are per symbol
    conn = connect_readonly(journal.path)
    assert conn.execute("SELECT COUNT(*) FROM fills").fetchone()[0] == 2
    conn.close()
    assert status_of(journal.path, "bcr1-1") == ("PARTIALLY_FILLED", "0.001")
    journal.record_fill(fill("bcr1-1", 11))
    assert status_of(journal.path, "bcr1-1") == ("FILLED", "0.002")


def test_order_status_only_moves_forward(journal: Journal) -> None:
    journal.record_order(order(1))
    assert status_of(journal.path, "bcr1-1")[0] == "PENDING_NEW"
    journal.record_fill(fill("bcr1-1", 1, qty="0.002"))
    # the REST ack arrives after the fill report: it must not reopen the order
    journal.record_outcome(OrderOutcome("new", SYM, "bcr1-1", S.NEW, order_id=7))
    assert status_of(journal.path, "bcr1-1")[0] == "FILLED"
    journal.record_cancel(cancel_report("bcr1-1"))
    assert status_of(journal.path, "bcr1-1")[0] == "FILLED"  # the first terminal status sticks

    journal.record_order(order(2))
    journal.record_outcome(OrderOutcome("new", SYM, "bcr1-2", S.NEW, order_id=8))
    journal.record_outcome(OrderOutcome("cancel", SYM, "bcr1-2", S.REJECTED, error_code=-2011))
    assert status_of(journal.path, "bcr1-2")[0] == "NEW"  # a refused cancel says nothing final
    journal.record_outcome(OrderOutcome("cancel", SYM, "bcr1-2", S.UNKNOWN, error_msg="timeout"))
    assert status_of(journal.path, "bcr1-2")[0] == "UNKNOWN"
    journal.record_outcome(OrderOutcome("query", SYM, "bcr1-2", S.REJECTED, error_code=-2013))
    assert status_of(journal.path, "bcr1-2")[0] == "UNKNOWN"  # "does not exist" is the engine's call
    journal.record_cancel(cancel_report("bcr1-2", S.EXPIRED))
    assert status_of(journal.path, "bcr1-2")[0] == "EXPIRED"


def test_events_keep_latency_and_money_stays_exact(journal: Journal) -> None:
    journal.record_order(order(1, price="0.1", qty="0.30000001"))
    journal.record_outcome(
        OrderOutcome("new", SYM, "bcr1-1", S.NEW, order_id=9, sent_ns=1_000, done_ns=251_000)
    )
    conn = connect_readonly(journal.path)
    price, qty = conn.execute("SELECT price, qty FROM orders").fetchone()
    assert (price, qty) == ("0.1", "0.30000001") and D(price) * 3 == D("0.3")
    kinds = conn.execute("SELECT kind, status, latency_us FROM order_events ORDER BY id").fetchall()
    assert [tuple(k) for k in kinds] == [("submitted", "PENDING_NEW", None), ("new", "NEW", 250.0)]
    conn.close()


def test_snapshots_drifts_pnl_and_latency_rows(journal: Journal) -> None:
    journal.record_balances([Balance("USDT", D("10.5"), D("1"))], "startup", time_ms=5)
    drifts = [Drift("balance.free", "USDT", "10", "10.5", 3, "fee rounding", True)]
    journal.record_drifts("reconcile_light", drifts, ["correct"], time_ms=6)
    journal.record_pnl([PnlSample(SYM, D("0.001"), D("0.5"), D("-0.1"), D("0.01"), D("100.005"))], time_ms=7)
    journal.record_latency("tick_to_order", {"count": 3, "p50": 12.5, "p99": 40.0, "max": 41.0}, time_ms=8)
    conn = connect_readonly(journal.path)
    assert tuple(conn.execute("SELECT asset, free, locked, source FROM balances").fetchone()) == (
        "USDT",
        "10.5",
        "1",
        "startup",
    )
    assert tuple(conn.execute("SELECT field, cause, corrected, action FROM drifts").fetchone()) == (
        "balance.free",
        "fee rounding",
        1,
        "correct",
    )
    assert tuple(conn.execute("SELECT position, mid FROM pnl_samples").fetchone()) == ("0.001", "100.005")
    assert tuple(conn.execute("SELECT count, p50, p90, p99 FROM latency").fetchone()) == (3, 12.5, 0.0, 40.0)
    conn.close()
    with pytest.raises(ValueError):  # one action per drift
        journal.record_drifts("x", drifts, [])


def test_load_gives_what_restart_recovery_needs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.start_run(name="a", run_id="r1", id_prefix="bcr1-")
        j.record_order(order(1))
        j.end_run("duration reached")
        j.start_run(name="a", run_id="r2", id_prefix="bcr2-")
        for seq in (1, 2, 3, 12):
            j.record_order(order(seq, "bcr2-"))
        j.record_fill(fill("bcr2-1", 41, qty="0.002"))  # FILLED
        j.record_outcome(OrderOutcome("new", SYM, "bcr2-2", S.NEW, order_id=2))
        j.record_outcome(OrderOutcome("new", SYM, "bcr2-3", S.UNKNOWN, error_msg="timeout"))
        j.record_outcome(OrderOutcome("new", SYM, "bcr2-12", S.REJECTED, error_code=-2010))
        j.record_fill(fill("x-9", 40, symbol="ETHUSDT"))
        # no end_run: the second run was killed
    state = Journal.load(path)
    assert (state.run, state.run_id, state.id_prefix, state.seq_high) == (2, "r2", "bcr2-", 12)
    assert state.clean_exit is False and state.ended_ms is None
    # every order of any run not known terminal: run 1's PENDING_NEW one and run 2's NEW and UNKNOWN
    assert {(o.run, o.client_order_id, o.status) for o in state.open_orders} == {
        (1, "bcr1-1", "PENDING_NEW"),
        (2, "bcr2-2", "NEW"),
        (2, "bcr2-3", "UNKNOWN"),
    }
    assert state.last_trade_id == {SYM: 41, "ETHUSDT": 40}
    assert state.prefixes == ("bcr1-", "bcr2-")
    assert state.is_ours("bcr1-77") and state.is_ours("bcr2-5") and not state.is_ours("web_123")


def test_load_of_a_missing_file_is_an_empty_state_and_bad_files_are_refused(tmp_path: Path) -> None:
    state = Journal.load(tmp_path / "none.sqlite")
    assert state.run is None and state.open_orders == () and state.clean_exit
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError):
        Journal.load(junk)
    with pytest.raises(JournalError):
        Journal(junk)
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="not a botcore journal"):
        Journal(other)
    newer = tmp_path / "newer.sqlite"
    Journal(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="newer"):
        Journal(newer)


def test_writes_before_start_run_are_refused(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite") as j, pytest.raises(JournalError, match="start_run"):
        j.record_order(order(1))


def test_readers_see_commits_while_the_writer_is_open(journal: Journal) -> None:
    reader = connect_readonly(journal.path)
    journal.record_order(order(1))
    assert reader.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1  # still in the WAL
    journal.checkpoint()
    journal.record_order(order(2))
    assert reader.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 2
    reader.close()


def test_a_failed_transaction_leaves_nothing_behind(journal: Journal) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), journal._tx() as c:
        c.execute(
            "INSERT INTO balances (run, time_ms, source, asset, free, locked) VALUES (1, 1, 's', 'A', '1', '0')"
        )
        raise Boom
    journal.record_order(order(1))  # the connection is usable afterwards
    conn = connect_readonly(journal.path)
    assert conn.execute("SELECT COUNT(*) FROM balances").fetchone()[0] == 0
    conn.close()


# ------------------------------------------------------------------------------------------------
# SIGKILL at random points
# ------------------------------------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from decimal import Decimal as D
    from botcore.journal import Journal
    from botcore.model import Fill, OrderRequest, OrderType, Side

    j = Journal(sys.argv[1])
    j.start_run(name="crash", run_id="k1", id_prefix="bck1-")
    print("READY", flush=True)
    i = 0
    while True:
        i += 1
        cid = f"bck1-{i}"
        j.record_order(OrderRequest("BTCUSDT", Side.BUY, D("0.002"), D("100.5"), OrderType.LIMIT_MAKER, None, cid, "mm"))
        print("O", cid, flush=True)
        if i % 3 == 0:
            j.record_fill(Fill("BTCUSDT", cid, i, i, Side.BUY, D("100.5"), D("0.001"), D(0), "USDT", True, i))
            print("F", i, flush=True)
    """
)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_sigkill_loses_no_committed_record(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path = tmp_path / "crash.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read() if proc.stderr else ""
        stop_after = rng.randint(5, 600)
        reported: list[str] = []
        while len(reported) < stop_after:
            line = proc.stdout.readline()
            assert line, "the child died on its own"
            reported.append(line.strip())
        time.sleep(rng.random() * 0.01)  # land anywhere, including inside a transaction
        os.kill(proc.pid, signal.SIGKILL)
        reported += [line.strip() for line in proc.stdout.read().splitlines() if line.strip()]
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    orders = {r.split()[1] for r in reported if r.startswith("O ")}
    fills = {int(r.split()[1]) for r in reported if r.startswith("F ")}
    assert orders and len(orders) + len(fills) >= stop_after
    conn = sqlite3.connect(path)  # opening recovers the WAL
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    have_orders = {r[0] for r in conn.execute("SELECT client_order_id FROM orders")}
    have_fills = {r[0] for r in conn.execute("SELECT trade_id FROM fills")}
    conn.close()
    assert orders <= have_orders, f"lost orders: {sorted(orders - have_orders)[:5]}"
    assert fills <= have_fills, f"lost fills: {sorted(fills - have_fills)[:5]}"
    # at most the one record in flight was committed without being reported
    assert len(have_orders - orders) <= 1 and len(have_fills - fills) <= 1
    state = Journal.load(path)
    assert state.run == 1 and state.clean_exit is False
    assert state.seq_high == max(int(c.split("-")[1]) for c in have_orders)
    with Journal(path) as again:  # a restarted run appends to the same file
        assert again.start_run(name="after", run_id="k2", id_prefix="bck2-") == 2
