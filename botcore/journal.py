"""The trade journal: an embedded SQLite file that survives a crash and feeds restart and reports.

Why SQLite in WAL mode with ``synchronous=NORMAL``: each write is one small committed transaction
appended to the write-ahead log without an fsync, so a commit costs a ``write()`` (tens of µs),
yet a committed transaction survives SIGKILL of the process (the WAL is in the OS page cache;
only a power loss or OS crash can drop the last commits). The engine thread writes through the
per-event hooks (orders, outcomes, fills, cancels, drifts), never per book update. Automatic
checkpoints are off on the writer connection, because a checkpoint fsyncs and would stall the
engine thread; ``checkpoint()`` is meant for a background thread, and ``close()`` does a final one.

Money is stored as plain decimal strings (exact), never as binary floats; times are wall-clock
milliseconds (``time.time_ns() // 1_000_000``), the clock of the venue's timestamps.

Readers (``botcore report``, ``Journal.load`` for restart recovery) open their own connections;
WAL lets them read while a run is writing.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from botcore.model import (
    Balance,
    Drift,
    ExecutionReport,
    Fill,
    Instrument,
    OrderOutcome,
    OrderRequest,
    OrderStatus,
    Side,
    plain,
)

__all__ = [
    "SCHEMA_VERSION",
    "TERMINAL_STATUSES",
    "Journal",
    "JournalError",
    "JournalOrder",
    "JournalState",
    "FILL_COLUMNS",
    "PnlSample",
    "connect_readonly",
    "fill_from_row",
    "now_ms",
]

SCHEMA_VERSION = 1

FILL_COLUMNS = (
    "symbol, client_order_id, order_id, trade_id, side, price, qty, commission, commission_asset, "
    "is_maker, time_ms"
)
"""The ``fills`` columns ``fill_from_row`` reads, in its order (``SELECT {FILL_COLUMNS} FROM fills``)."""


def fill_from_row(row: Sequence[Any]) -> Fill:
    """A ``Fill`` from a ``fills`` row selected as ``FILL_COLUMNS`` (amounts stored as exact text)."""
    sym, cid, oid, tid, side, price, qty, fee, fee_asset, maker, t = row
    return Fill(
        sym, cid, int(oid), int(tid), Side(side), Decimal(price), Decimal(qty), Decimal(fee), fee_asset,
        bool(maker), int(t),
    )

TERMINAL_STATUSES: tuple[str, ...] = tuple(s.value for s in OrderStatus if s.is_terminal)

# How far along its life a status puts an order: the journal never moves an order backwards
# (a late ack "NEW" after the fill report "FILLED" must not reopen it). UNKNOWN ranks with NEW:
# it may replace NEW (a timeout after the ack is still "not known terminal") but not a fill.
_RANK: dict[str, int] = {
    "PENDING_NEW": 0,
    "NEW": 1,
    "UNKNOWN": 1,
    "PENDING_CANCEL": 1,
    "PARTIALLY_FILLED": 2,
    **{s: 3 for s in TERMINAL_STATUSES},
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    run_id TEXT NOT NULL,
    id_prefix TEXT NOT NULL,
    started_ms INTEGER NOT NULL,
    ended_ms INTEGER,
    exit_reason TEXT,
    config TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS instruments (
    run INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    base TEXT NOT NULL,
    quote TEXT NOT NULL,
    tick_size TEXT NOT NULL,
    step_size TEXT NOT NULL,
    PRIMARY KEY (run, symbol)
);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    client_order_id TEXT NOT NULL,
    seq INTEGER,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    type TEXT NOT NULL,
    tif TEXT,
    price TEXT,
    qty TEXT NOT NULL,
    filled TEXT NOT NULL DEFAULT '0',
    strategy TEXT NOT NULL DEFAULT '',
    tag TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,
    rank INTEGER NOT NULL,
    order_id INTEGER NOT NULL DEFAULT 0,
    updated_ms INTEGER NOT NULL,
    UNIQUE (run, client_order_id)
);
CREATE INDEX IF NOT EXISTS orders_cid ON orders (client_order_id);
CREATE INDEX IF NOT EXISTS orders_open ON orders (rank) WHERE rank < 3;
CREATE TABLE IF NOT EXISTS order_events (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    client_order_id TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    order_id INTEGER NOT NULL DEFAULT 0,
    error_code INTEGER NOT NULL DEFAULT 0,
    error_msg TEXT NOT NULL DEFAULT '',
    cum_qty TEXT NOT NULL DEFAULT '0',
    latency_us REAL
);
CREATE INDEX IF NOT EXISTS order_events_cid ON order_events (client_order_id);
CREATE TABLE IF NOT EXISTS fills (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    trade_id INTEGER NOT NULL,
    client_order_id TEXT NOT NULL,
    order_id INTEGER NOT NULL,
    side TEXT NOT NULL,
    price TEXT NOT NULL,
    qty TEXT NOT NULL,
    commission TEXT NOT NULL,
    commission_asset TEXT NOT NULL,
    is_maker INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    recorded_ms INTEGER NOT NULL,
    UNIQUE (symbol, trade_id)
);
CREATE TABLE IF NOT EXISTS balances (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    source TEXT NOT NULL,
    asset TEXT NOT NULL,
    free TEXT NOT NULL,
    locked TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drifts (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    job TEXT NOT NULL,
    field TEXT NOT NULL,
    key TEXT NOT NULL,
    local TEXT NOT NULL,
    venue TEXT NOT NULL,
    age_ms INTEGER NOT NULL,
    cause TEXT NOT NULL,
    corrected INTEGER NOT NULL,
    action TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS pnl_samples (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL,
    position TEXT NOT NULL,
    realized TEXT NOT NULL,
    unrealized TEXT NOT NULL,
    fees TEXT NOT NULL,
    mid TEXT
);
CREATE INDEX IF NOT EXISTS pnl_samples_run ON pnl_samples (run, time_ms);
CREATE TABLE IF NOT EXISTS latency (
    id INTEGER PRIMARY KEY,
    run INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    name TEXT NOT NULL,
    count INTEGER NOT NULL,
    p50 REAL NOT NULL,
    p90 REAL NOT NULL,
    p99 REAL NOT NULL,
    p999 REAL NOT NULL,
    max REAL NOT NULL,
    mean REAL NOT NULL
);
"""


def now_ms() -> int:
    """Wall-clock milliseconds: the clock of venue timestamps and of every journal row."""
    return time.time_ns() // 1_000_000


class JournalError(Exception):
    """The journal file cannot be used (not a botcore journal, newer schema, unreadable)."""


class PnlSample(msgspec.Struct, frozen=True):
    """One point of the inventory/PnL chart of one symbol (values exact, as decimals)."""

    symbol: str
    position: Decimal
    realized: Decimal
    unrealized: Decimal
    fees: Decimal
    mid: Decimal | None = None


class JournalOrder(msgspec.Struct, frozen=True):
    """An order as the journal last knew it (restart recovery resolves the non-terminal ones)."""

    run: int
    client_order_id: str
    symbol: str
    side: str
    order_type: str
    price: str | None
    qty: str
    filled: str
    status: str
    strategy: str
    created_ms: int
    order_id: int


class JournalState(msgspec.Struct, frozen=True):
    """What restart recovery needs from the journal of the previous run(s).

    ``run`` is the journal row id of the last run (None for a new journal); ``clean_exit`` is
    False when that run never recorded its end (crash, SIGKILL). ``seq_high`` is the highest
    client-order-id sequence the last run used, so a resumed run id continues after it.
    ``open_orders`` are all orders, of any run, not known to be terminal; ``last_trade_id`` the
    highest trade id journaled per symbol; ``prefixes`` every run's client-order-id prefix, to
    recognise our own orders on the venue.
    """

    path: str
    run: int | None = None
    run_id: str = ""
    id_prefix: str = ""
    seq_high: int = 0
    started_ms: int = 0
    ended_ms: int | None = None
    exit_reason: str | None = None
    clean_exit: bool = True
    open_orders: tuple[JournalOrder, ...] = ()
    last_trade_id: dict[str, int] = {}
    prefixes: tuple[str, ...] = ()

    def is_ours(self, client_order_id: str) -> bool:
        """Made by any journaled run (prefix match)."""
        return any(client_order_id.startswith(p) for p in self.prefixes if p)


def _seq_of(cid: str, prefix: str) -> int | None:
    if prefix and cid.startswith(prefix):
        tail = cid[len(prefix) :]
        if tail.isdigit():
            return int(tail)
    return None


def _d(value: Decimal | int | str | None) -> str | None:
    if value is None:
        return None
    return plain(Decimal(value))


class Journal:
    """Writer side of the journal (one per run; the engine thread writes after ``start_run``).

    The connection is opened with ``check_same_thread=False`` because the run opens it on the
    main thread and the engine thread writes; botcore guarantees one writer at a time (start-up,
    then the engine thread, then shut-down after the engine thread ended). Every ``record_*`` is
    one committed transaction.
    """

    def __init__(self, path: str | Path, *, config_timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(
            str(self.path),
            isolation_level=None,  # autocommit: one statement = one transaction unless _tx()
            check_same_thread=False,
            timeout=config_timeout_s,
            cached_statements=64,  # every SQL string below is prepared once and reused
        )
        self._lock = threading.Lock()  # uncontended in normal runs; guards a straggling writer
        self._ckpt_lock = threading.Lock()
        self._ckpt_conn: sqlite3.Connection | None = None
        try:
            _setup_writer(self._conn)
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise JournalError(f"{self.path}: not a usable journal: {exc}") from None
        self.run: int | None = None
        self.id_prefix = ""
        self._closed = False

    # --- runs ------------------------------------------------------------------------------------
    def start_run(
        self,
        *,
        name: str,
        run_id: str,
        id_prefix: str,
        config_text: str = "",
        instruments: Iterable[Instrument] = (),
        started_ms: int | None = None,
    ) -> int:
        """Open a run row; later records belong to it. Returns the run's row id."""
        t = now_ms() if started_ms is None else started_ms
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO runs (name, run_id, id_prefix, started_ms, config) VALUES (?, ?, ?, ?, ?)",
                (name, run_id, id_prefix, t, config_text),
            )
            run = int(cur.lastrowid or 0)
            c.executemany(
                "INSERT OR REPLACE INTO instruments (run, symbol, base, quote, tick_size, step_size) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (run, i.symbol, i.base_asset, i.quote_asset, plain(i.tick_size), plain(i.step_size))
                    for i in instruments
                ],
            )
        self.run = run
        self.id_prefix = id_prefix
        return run

    def end_run(self, reason: str, ended_ms: int | None = None) -> None:
        """Record a clean end; a run without one was killed (``JournalState.clean_exit``)."""
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET ended_ms = ?, exit_reason = ? WHERE id = ?",
                (now_ms() if ended_ms is None else ended_ms, reason, self._run()),
            )

    def _run(self) -> int:
        if self.run is None:
            raise JournalError("no run started: call start_run() first")
        return self.run

    # --- orders ----------------------------------------------------------------------------------
    def record_order(self, order: OrderRequest, time_ms: int | None = None) -> None:
        """An order was tracked and handed to the gateway (status PENDING_NEW)."""
        t = now_ms() if time_ms is None else time_ms
        run = self._run()
        cid = order.client_order_id
        with self._tx() as c:
            c.execute(
                "INSERT OR IGNORE INTO orders (run, client_order_id, seq, symbol, side, type, tif, price, "
                "qty, strategy, tag, created_ms, status, rank, updated_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'PENDING_NEW', 0, ?)",
                (
                    run,
                    cid,
                    _seq_of(cid, self.id_prefix),
                    order.symbol,
                    str(order.side),
                    str(order.order_type),
                    str(order.time_in_force) if order.time_in_force is not None else None,
                    _d(order.price),
                    plain(order.qty),
                    order.strategy,
                    order.tag,
                    t,
                    t,
                ),
            )
            c.execute(
                "INSERT INTO order_events (run, client_order_id, time_ms, kind, status) "
                "VALUES (?, ?, ?, 'submitted', 'PENDING_NEW')",
                (run, cid, t),
            )

    def record_outcome(self, outcome: OrderOutcome, time_ms: int | None = None) -> None:
        """What the gateway learned (ack, reject, unknown, cancel result, query answer).

        A rejected *cancel* says nothing final about the order (-2011: it may have filled), so it
        is only logged as an event; every other status advances the order, never backwards.
        """
        t = now_ms() if time_ms is None else time_ms
        status = str(outcome.status)
        latency = (
            (outcome.done_ns - outcome.sent_ns) / 1000.0 if outcome.sent_ns and outcome.done_ns else None
        )
        with self._tx() as c:
            c.execute(
                "INSERT INTO order_events (run, client_order_id, time_ms, kind, status, order_id, "
                "error_code, error_msg, cum_qty, latency_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._run(),
                    outcome.client_order_id,
                    t,
                    outcome.action,
                    status,
                    outcome.order_id,
                    outcome.error_code,
                    outcome.error_msg[:200],
                    plain(outcome.cum_qty),
                    latency,
                ),
            )
            if outcome.action == "cancel" and outcome.status is OrderStatus.REJECTED:
                return
            if outcome.action == "query" and outcome.status is OrderStatus.UNKNOWN:
                return  # the query itself failed
            if outcome.action == "query" and outcome.status is OrderStatus.REJECTED and outcome.error_code:
                # -2013 "order does not exist": the engine decides (after its grace period) and
                # reports it; a journal row stays open until then so a restart asks again.
                return
            self._advance(c, outcome.client_order_id, status, outcome.order_id, t)

    def record_cancel(self, report: ExecutionReport, time_ms: int | None = None) -> None:
        """The order left the book without filling completely (CANCELED / EXPIRED ...)."""
        t = now_ms() if time_ms is None else time_ms
        status = str(report.status)
        with self._tx() as c:
            c.execute(
                "INSERT INTO order_events (run, client_order_id, time_ms, kind, status, order_id, cum_qty) "
                "VALUES (?, ?, ?, 'cancelled', ?, ?, ?)",
                (self._run(), report.client_order_id, t, status, report.order_id, plain(report.cum_qty)),
            )
            self._advance(c, report.client_order_id, status, report.order_id, t)

    def resolve_order(
        self, run: int, client_order_id: str, status: str, order_id: int = 0, time_ms: int | None = None
    ) -> None:
        """Restart recovery learned the final (or current) status of an older run's order."""
        t = now_ms() if time_ms is None else time_ms
        rank = _RANK.get(status, 1)
        with self._tx() as c:
            c.execute(
                "INSERT INTO order_events (run, client_order_id, time_ms, kind, status, order_id) "
                "VALUES (?, ?, ?, 'recovered', ?, ?)",
                (run, client_order_id, t, status, order_id),
            )
            c.execute(
                "UPDATE orders SET status = ?, rank = ?, order_id = CASE WHEN ? THEN ? ELSE order_id END, "
                "updated_ms = ? WHERE run = ? AND client_order_id = ? AND rank <= ?",
                (status, rank, order_id, order_id, t, run, client_order_id, rank),
            )

    def _advance(self, c: sqlite3.Connection, cid: str, status: str, order_id: int, t: int) -> None:
        rank = _RANK.get(status)
        if rank is None:
            return
        c.execute(
            "UPDATE orders SET status = ?, rank = ?, order_id = CASE WHEN ? THEN ? ELSE order_id END, "
            "updated_ms = ? WHERE id = (SELECT id FROM orders WHERE client_order_id = ? ORDER BY id DESC LIMIT 1) "
            "AND rank <= ? AND NOT (rank = 3 AND status <> ?)",
            (status, rank, order_id, order_id, t, cid, rank, status),
        )

    # --- fills -----------------------------------------------------------------------------------
    def record_fill(self, fill: Fill, time_ms: int | None = None, *, run: int | None = None) -> bool:
        """Insert a fill once per (symbol, trade id); False if it was already journaled.

        The order's filled quantity grows with it and reaching the order quantity makes it FILLED.
        ``run`` files a fill recovered after a restart under the run that placed the order.
        """
        t = now_ms() if time_ms is None else time_ms
        run = self._run() if run is None else run
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO fills (run, symbol, trade_id, client_order_id, order_id, side, price, "
                "qty, commission, commission_asset, is_maker, time_ms, recorded_ms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run,
                    fill.symbol,
                    fill.trade_id,
                    fill.client_order_id,
                    fill.order_id,
                    str(fill.side),
                    plain(fill.price),
                    plain(fill.qty),
                    plain(fill.commission),
                    fill.commission_asset,
                    int(fill.is_maker),
                    fill.time_ms,
                    t,
                ),
            )
            if cur.rowcount != 1:
                return False
            row = c.execute(
                "SELECT id, qty, filled, rank FROM orders WHERE client_order_id = ? ORDER BY id DESC LIMIT 1",
                (fill.client_order_id,),
            ).fetchone()
            if row is not None:
                oid, qty, filled, rank = row
                total = Decimal(filled) + fill.qty
                status = "FILLED" if total >= Decimal(qty) else "PARTIALLY_FILLED"
                new_rank = max(rank, _RANK[status])
                c.execute(
                    "UPDATE orders SET filled = ?, status = CASE WHEN ? >= rank THEN ? ELSE status END, "
                    "rank = ?, order_id = CASE WHEN order_id = 0 THEN ? ELSE order_id END, updated_ms = ? "
                    "WHERE id = ?",
                    (plain(total), _RANK[status], status, new_rank, fill.order_id, t, oid),
                )
            c.execute(
                "INSERT INTO order_events (run, client_order_id, time_ms, kind, status, order_id, cum_qty) "
                "VALUES (?, ?, ?, 'filled', 'TRADE', ?, ?)",
                (run, fill.client_order_id, t, fill.order_id, plain(fill.qty)),
            )
        return True

    # --- snapshots of state ------------------------------------------------------------------------
    def record_balances(self, balances: Iterable[Balance], source: str, time_ms: int | None = None) -> None:
        t = now_ms() if time_ms is None else time_ms
        run = self._run()
        rows = [(run, t, source, b.asset, plain(b.free), plain(b.locked)) for b in balances]
        if rows:
            with self._tx() as c:
                c.executemany(
                    "INSERT INTO balances (run, time_ms, source, asset, free, locked) VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def record_drifts(
        self,
        job: str,
        drifts: Sequence[Drift],
        actions: Sequence[str] | None = None,
        time_ms: int | None = None,
    ) -> None:
        """One row per drift record; ``actions[i]`` is the policy decision for ``drifts[i]``."""
        if not drifts:
            return
        t = now_ms() if time_ms is None else time_ms
        run = self._run()
        acts = list(actions) if actions is not None else [""] * len(drifts)
        with self._tx() as c:
            c.executemany(
                "INSERT INTO drifts (run, time_ms, job, field, key, local, venue, age_ms, cause, corrected, action) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (run, t, job, d.field, d.key, d.local, d.venue, d.age_ms, d.cause, int(d.corrected), a)
                    for d, a in zip(drifts, acts, strict=True)
                ],
            )

    def record_pnl(self, samples: Iterable[PnlSample], time_ms: int | None = None) -> None:
        t = now_ms() if time_ms is None else time_ms
        run = self._run()
        rows = [
            (
                run,
                t,
                s.symbol,
                plain(s.position),
                plain(s.realized),
                plain(s.unrealized),
                plain(s.fees),
                _d(s.mid),
            )
            for s in samples
        ]
        if rows:
            with self._tx() as c:
                c.executemany(
                    "INSERT INTO pnl_samples (run, time_ms, symbol, position, realized, unrealized, fees, mid) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )

    def record_latency(self, name: str, summary: Mapping[str, float], time_ms: int | None = None) -> None:
        """A latency summary in µs (``LatencyHistogram.summary()`` keys: count, p50, p90, p99, p99.9, max, mean)."""
        t = now_ms() if time_ms is None else time_ms

        def g(k: str) -> float:
            return float(summary.get(k, 0.0))

        with self._tx() as c:
            c.execute(
                "INSERT INTO latency (run, time_ms, name, count, p50, p90, p99, p999, max, mean) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self._run(),
                    t,
                    name,
                    int(g("count")),
                    g("p50"),
                    g("p90"),
                    g("p99"),
                    g("p99.9"),
                    g("max"),
                    g("mean"),
                ),
            )

    # --- maintenance -------------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Move the WAL into the database (PASSIVE: never blocks the writer); call off the engine thread."""
        with self._ckpt_lock:
            if self._closed:
                return
            if self._ckpt_conn is None:
                self._ckpt_conn = sqlite3.connect(
                    str(self.path), isolation_level=None, check_same_thread=False
                )
            self._ckpt_conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        """Final checkpoint (the WAL is folded into the file) and close; idempotent."""
        with self._ckpt_lock:
            if self._closed:
                return
            self._closed = True
            if self._ckpt_conn is not None:
                self._ckpt_conn.close()
                self._ckpt_conn = None
        with self._lock:
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass  # another reader holds the WAL: the next open checkpoints it
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction (BEGIN IMMEDIATE ... COMMIT), rolled back on error."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                yield c
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")

    # --- reading -----------------------------------------------------------------------------------
    @staticmethod
    def load(path: str | Path) -> JournalState:
        """What restart recovery needs (see ``JournalState``); an absent file is an empty state."""
        p = Path(path)
        if not p.exists():
            return JournalState(path=str(p))
        conn = connect_readonly(p)
        try:
            return _load(conn, str(p))
        finally:
            conn.close()

    @staticmethod
    def unclean_session_fills(path: str | Path, last_run: int) -> tuple[Fill, ...]:
        """Fills of ``last_run`` and of every run before it back to the last clean exit, by trade id.

        Restart recovery rebuilds a crashed session's position from them. A missing file holds
        none; an unreadable one raises ``JournalError``.
        """
        if not Path(path).exists():
            return ()
        conn = connect_readonly(path)
        try:
            runs: list[int] = []
            for run_id, ended in conn.execute(
                "SELECT id, ended_ms FROM runs WHERE id <= ? ORDER BY id DESC", (last_run,)
            ):
                if ended is not None:
                    break
                runs.append(int(run_id))
            if not runs:
                return ()
            marks = ",".join("?" * len(runs))
            rows = conn.execute(
                f"SELECT {FILL_COLUMNS} FROM fills WHERE run IN ({marks}) ORDER BY trade_id", runs
            ).fetchall()
        except sqlite3.Error as exc:
            raise JournalError(f"{path}: cannot read fills ({exc})") from None
        finally:
            conn.close()
        return tuple(fill_from_row(r) for r in rows)


def _setup_writer(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.DatabaseError(f"cannot switch to WAL mode (got {mode!r})")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints fsync: never on the engine thread
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise sqlite3.DatabaseError(f"schema version {version} is newer than this botcore ({SCHEMA_VERSION})")
    if version == 0:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "runs" not in tables:
            raise sqlite3.DatabaseError("the file holds other tables; not a botcore journal")
    conn.executescript(_SCHEMA)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection (reports, recovery) that works while a run writes (WAL)."""
    p = Path(path)
    if not p.exists():
        raise JournalError(f"{p}: no such journal")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise JournalError(f"{p}: not a botcore journal ({exc})") from None
    if "runs" not in tables:
        conn.close()
        raise JournalError(f"{p}: not a botcore journal (no runs table)")
    return conn


def _load(conn: sqlite3.Connection, path: str) -> JournalState:
    last = conn.execute(
        "SELECT id, run_id, id_prefix, started_ms, ended_ms, exit_reason FROM runs ORDER BY id DESC LIMIT 1"
    ).fetchone()
    prefixes = tuple(r[0] for r in conn.execute("SELECT DISTINCT id_prefix FROM runs ORDER BY id"))
    open_rows = conn.execute(
        "SELECT run, client_order_id, symbol, side, type, price, qty, filled, status, strategy, created_ms, "
        "order_id FROM orders WHERE rank < 3 ORDER BY id"
    ).fetchall()
    trade_ids = {
        r[0]: int(r[1]) for r in conn.execute("SELECT symbol, MAX(trade_id) FROM fills GROUP BY symbol")
    }
    open_orders = tuple(
        JournalOrder(
            run=r[0],
            client_order_id=r[1],
            symbol=r[2],
            side=r[3],
            order_type=r[4],
            price=r[5],
            qty=r[6],
            filled=r[7],
            status=r[8],
            strategy=r[9],
            created_ms=r[10],
            order_id=r[11],
        )
        for r in open_rows
    )
    if last is None:
        return JournalState(path=path, open_orders=open_orders, last_trade_id=trade_ids, prefixes=prefixes)
    run = int(last[0])
    seq = conn.execute("SELECT MAX(seq) FROM orders WHERE run = ?", (run,)).fetchone()[0]
    return JournalState(
        path=path,
        run=run,
        run_id=last[1],
        id_prefix=last[2],
        seq_high=int(seq or 0),
        started_ms=int(last[3]),
        ended_ms=last[4],
        exit_reason=last[5],
        clean_exit=last[4] is not None,
        open_orders=open_orders,
        last_trade_id=trade_ids,
        prefixes=prefixes,
    )
