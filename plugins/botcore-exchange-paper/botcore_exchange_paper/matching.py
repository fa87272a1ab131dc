"""Per-symbol matching: recorded L2 book, own resting orders, queue-position fills, taker walks.

This implements /work/shared/MATCHING.md:
- section 0/1: recorded book from snapshot + diffs, bookTicker fused only when newer than the last
  applied diff (``u`` greater), "latest update wins" when conflation leaves the book crossed;
  ``m=true`` prints (seller aggressed) fill resting BUYs only, ``m=false`` prints resting SELLs only;
- (a) A0-A10 queue model on the *recorded* quantities (own orders never count as "ahead");
- (b) the optional A5 variants (``risk_averse``, ``power2/3``, ``log``, ``log2``, ``cross_only``, ``touch``)
  and ``partial=False``;
- (d) the served book = recorded - own taker consumption + own resting size, with one update-id
  counter per symbol shared by served diffs and bookTickers;
- (e) takers walk the served book level by level (market quantity ahead of an own order first, then
  the own order, FIFO), consuming recorded liquidity until the recording refreshes the level; STP.

Units are the symbol's integers (see filters.py). The queue estimate ``a`` is a float in quantity
units because A5 credits fractional cancellations; fills are always whole lots.

The book mutates order quantities (``executed_u``, ``prevented_u``) and its own FIFO levels, and
returns ``Exec`` records; the venue settles money, order status and reports from them.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from botcore_exchange_paper.filters import SymbolSpec

OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED"})


class Order:
    """One order of a paper account (the venue's record; the book only reads/writes quantities)."""

    __slots__ = (
        "account",
        "symbol",
        "order_id",
        "client_id",
        "side",
        "is_buy",
        "type",
        "tif",
        "price_u",
        "qty_u",
        "quote_qty_u",
        "executed_u",
        "cum_quote_u",
        "prevented_u",
        "status",
        "time",
        "update_time",
        "working_time",
        "stp",
        "lock_asset",
        "locked_u",
        "a",
        "c",
        "external",
        "strategy_id",
        "strategy_type",
        "prevented_match_id",
        "expiry_reason",
        "resting",
        "a_at_accept",
    )

    def __init__(
        self,
        account: Any,
        symbol: str,
        order_id: int,
        client_id: str,
        side: str,
        type: str,
        tif: str,
        price_u: int,
        qty_u: int,
        quote_qty_u: int = 0,
        stp: str = "NONE",
        time: int = 0,
    ) -> None:
        self.account = account
        self.symbol = symbol
        self.order_id = order_id
        self.client_id = client_id
        self.side = side
        self.is_buy = side == "BUY"
        self.type = type
        self.tif = tif
        self.price_u = price_u
        self.qty_u = qty_u
        self.quote_qty_u = quote_qty_u
        self.executed_u = 0
        self.cum_quote_u = 0
        self.prevented_u = 0
        self.status = "NEW"
        self.time = time
        self.update_time = time
        self.working_time = time
        self.stp = stp
        self.lock_asset = ""
        self.locked_u = 0
        self.a = 0.0
        self.c = 0
        self.external = False
        self.strategy_id: int | None = None
        self.strategy_type: int | None = None
        self.prevented_match_id: int | None = None
        self.expiry_reason: str | None = None
        self.resting = False
        self.a_at_accept = 0.0

    @property
    def leaves(self) -> int:
        """Quantity still available for execution (orig - executed - prevented)."""
        return self.qty_u - self.executed_u - self.prevented_u

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def __repr__(self) -> str:
        return (
            f"Order({self.symbol} #{self.order_id} {self.side} {self.type} p={self.price_u} q={self.qty_u} "
            f"exec={self.executed_u} {self.status} a={self.a:g})"
        )


class Exec:
    """One matching outcome. ``kind``: ``"fill"`` (maker and/or taker is an own order; None = the
    recorded market) or ``"stp"`` (a prevented self-match; quantities already applied)."""

    __slots__ = ("kind", "price_u", "qty_u", "maker", "taker", "mode", "taker_prev", "maker_prev", "rule")

    def __init__(
        self,
        kind: str,
        price_u: int,
        qty_u: int,
        maker: Order | None,
        taker: Order | None,
        rule: str = "",
        mode: str = "",
        taker_prev: int = 0,
        maker_prev: int = 0,
    ) -> None:
        self.kind = kind
        self.price_u = price_u
        self.qty_u = qty_u
        self.maker = maker
        self.taker = taker
        self.rule = rule
        self.mode = mode
        self.taker_prev = taker_prev
        self.maker_prev = maker_prev

    def __repr__(self) -> str:
        mk = self.maker.order_id if self.maker else "mkt"
        tk = self.taker.order_id if self.taker else "mkt"
        return f"Exec({self.kind} {self.rule} p={self.price_u} q={self.qty_u} maker={mk} taker={tk} {self.mode})"


class WalkResult:
    """A planned (or executed) taker walk."""

    __slots__ = ("steps", "filled_u", "cost_u", "taker_stp")

    def __init__(self) -> None:
        self.steps: list[tuple[Any, ...]] = []
        self.filled_u = 0
        self.cost_u = 0
        self.taker_stp = False


_EMPTY: list[Exec] = []


class Book:
    """Recorded book + own orders for one symbol (single-threaded, owned by the venue)."""

    def __init__(
        self,
        spec: SymbolSpec,
        queue_model: tuple[str, float] = ("power", 3.0),
        partial: bool = True,
        show_own: bool = True,
    ) -> None:
        self.spec = spec
        self.family, self.n = queue_model
        self.queue_free = self.family in ("cross_only", "touch")
        self.partial = partial
        self.show_own = show_own
        # recorded book
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        # lazy heaps of the recorded prices (bids negated); stale entries are dropped on access
        self._bheap: list[int] = []
        self._aheap: list[int] = []
        # own resting orders: price -> FIFO
        self.own_bids: dict[int, list[Order]] = {}
        self.own_asks: dict[int, list[Order]] = {}
        self._obb: int | None = None
        self._oba: int | None = None
        # own taker consumption of recorded liquidity, until the recording refreshes the level
        self.cons_bids: dict[int, int] = {}
        self.cons_asks: dict[int, int] = {}
        # recording sync state (Binance rules applied to the recording itself)
        self.ready = False
        self.last_u = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=512)
        self.gaps = 0
        self._resync = False
        self.dropped_diffs = 0
        self.stale_tickers = 0
        self._tk_u = 0  # id of the bookTicker that last set the top (0: a newer diff superseded it)
        self._tk_bp: int | None = None
        self._tk_ap: int | None = None
        # served feed
        self.uid = 0
        self.pend_U = 0
        self.pend_b: dict[int, str | None] = {}
        """Served bid levels changed since the last published diff -> the recorded qty string when the
        served qty is exactly the recorded one (no formatting needed), else None (recompute)."""
        self.pend_a: dict[int, str | None] = {}
        self.track = False
        self._dirty = False
        self.pub_top: tuple[int, int, int, int] | None = None
        self.ticker_top: tuple[int, int, int, int] | None = None
        self.last_ticker: tuple[Any, ...] | None = None
        """(bid (p, q), ask (p, q), bid strings, ask strings) of the last fused bookTicker."""
        """After a fused bookTicker with no own orders/consumption: the served top is exactly the
        recorded ticker (so the venue can forward its strings); None otherwise."""

    # ------------------------------------------------------------------------------------------
    # best prices
    # ------------------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        """Best recorded bid (own orders and consumption excluded)."""
        h, bids = self._bheap, self.bids
        while h:
            p = -h[0]
            if p in bids:
                return p
            heapq.heappop(h)
        return None

    def best_ask(self) -> int | None:
        h, asks = self._aheap, self.asks
        while h:
            p = h[0]
            if p in asks:
                return p
            heapq.heappop(h)
        return None

    def _rebuild_heaps(self) -> None:
        self._bheap = [-p for p in self.bids]
        heapq.heapify(self._bheap)
        self._aheap = list(self.asks)
        heapq.heapify(self._aheap)

    def avail_best_bid(self) -> int | None:
        """Best recorded bid still available after own taker consumption."""
        p = self.best_bid()
        cons = self.cons_bids
        if p is None or not cons or p not in cons:
            return p
        bids = self.bids
        for x in heapq.nlargest(len(cons) + 1, bids):
            if bids[x] > cons.get(x, 0):
                return x
        return None

    def avail_best_ask(self) -> int | None:
        p = self.best_ask()
        cons = self.cons_asks
        if p is None or not cons or p not in cons:
            return p
        asks = self.asks
        for x in heapq.nsmallest(len(cons) + 1, asks):
            if asks[x] > cons.get(x, 0):
                return x
        return None

    def _own_best_refresh(self) -> None:
        self._obb = max(self.own_bids) if self.own_bids else None
        self._oba = min(self.own_asks) if self.own_asks else None

    def served_qty(self, is_bid: bool, p: int) -> int:
        rec = self.bids if is_bid else self.asks
        q = rec.get(p, 0)
        if not self.show_own:
            return q
        c = (self.cons_bids if is_bid else self.cons_asks).get(p)
        if c:
            q = q - c if q > c else 0
        lvl = (self.own_bids if is_bid else self.own_asks).get(p)
        if lvl:
            for o in lvl:
                q += o.leaves
        return q

    def served_best(self, is_bid: bool) -> int | None:
        if not self.show_own:
            return self.best_bid() if is_bid else self.best_ask()
        if is_bid:
            p, o = self.avail_best_bid(), self._obb
            return o if p is None or (o is not None and o > p) else p
        p, o = self.avail_best_ask(), self._oba
        return o if p is None or (o is not None and o < p) else p

    def served_top(self) -> tuple[int, int, int, int]:
        """(bid price, bid qty, ask price, ask qty) of the served book; 0 for an empty side."""
        return self._served_side(True) + self._served_side(False)

    def _served_side(self, is_bid: bool) -> tuple[int, int]:
        rec = self.bids if is_bid else self.asks
        r = self.best_bid() if is_bid else self.best_ask()
        if not self.show_own:
            return (r, rec[r]) if r is not None else (0, 0)
        cons = self.cons_bids if is_bid else self.cons_asks
        o = self._obb if is_bid else self._oba
        if r is not None and (not cons or r not in cons) and (o is None or (o < r if is_bid else o > r)):
            return r, rec[r]  # the common case: the recorded best, untouched by own orders
        p = self.served_best(is_bid)
        return (p, self.served_qty(is_bid, p)) if p is not None else (0, 0)

    def served_levels(self, is_bid: bool, limit: int) -> list[tuple[int, int]]:
        """Top ``limit`` served levels, best first."""
        rec = self.bids if is_bid else self.asks
        own = self.own_bids if is_bid else self.own_asks
        keys: Iterable[int] = rec.keys() | own.keys() if self.show_own and own else rec.keys()
        extra = len(self.cons_bids if is_bid else self.cons_asks) if self.show_own else 0
        pick = heapq.nlargest if is_bid else heapq.nsmallest
        out = []
        for p in pick(limit + extra, keys):
            q = self.served_qty(is_bid, p)
            if q > 0:
                out.append((p, q))
                if len(out) == limit:
                    break
        return out

    # ------------------------------------------------------------------------------------------
    # served update ids
    # ------------------------------------------------------------------------------------------
    def end_batch(self) -> bool:
        """Close one engine event: if the served book changed, it gets the next update id."""
        if not self._dirty:
            return False
        self._dirty = False
        self.uid += 1
        if not self.pend_U:
            self.pend_U = self.uid
        return True

    def take_diff(self) -> tuple[int, int, list[list[str]], list[list[str]]] | None:
        """Pending served changes as (U, u, bids, asks) in wire strings, and reset; None if nothing is pending."""
        if not self.pend_U:
            return None
        U, u = self.pend_U, self.uid
        self.pend_U = 0
        b = self._levels_json(True, self.pend_b)
        a = self._levels_json(False, self.pend_a)
        self.pend_b = {}
        self.pend_a = {}
        return U, u, b, a

    def _levels_json(self, is_bid: bool, pend: dict[int, str | None]) -> list[list[str]]:
        spec = self.spec
        pstr = spec._pstr
        own = self.own_bids if is_bid else self.own_asks
        cons = self.cons_bids if is_bid else self.cons_asks
        plain = not self.show_own or not (own or cons)
        out = []
        for p, qs in pend.items():
            if qs is None or not (plain or (p not in own and p not in cons)):
                qs = spec.fmt_qty(self.served_qty(is_bid, p))
            ps = pstr.get(p)
            out.append([ps if ps is not None else spec.fmt_price(p), qs])
        return out

    def _touch(self, is_bid: bool, p: int) -> None:
        self._dirty = True
        if self.track:
            (self.pend_b if is_bid else self.pend_a)[p] = None

    # ------------------------------------------------------------------------------------------
    # recorded data
    # ------------------------------------------------------------------------------------------
    def apply_snapshot(self, snap: dict[str, Any]) -> list[Exec]:
        """A REST snapshot from the recording: first one initialises, later ones re-sync (A10)."""
        spec = self.spec
        new_b = {spec.price_u(p): spec.qty_u(q) for p, q in snap["bids"]}
        new_a = {spec.price_u(p): spec.qty_u(q) for p, q in snap["asks"]}
        new_b = {p: q for p, q in new_b.items() if q}
        new_a = {p: q for p, q in new_a.items() if q}
        last = int(snap["lastUpdateId"])
        was_ready = self.ready
        if not self.ready:
            self.bids, self.asks = new_b, new_a
            self._rebuild_heaps()
            self.ready = True
            if not self.uid:
                self.uid = last  # served ids continue in the recorded id range
            self._dirty = True
        else:
            for is_bid, old, new in ((True, self.bids, new_b), (False, self.asks, new_a)):
                for p in list(old.keys() | new.keys()):
                    if old.get(p, 0) != new.get(p, 0):
                        self._set(is_bid, p, new.get(p, 0), cap_only=True)
        self.last_u = last
        self._tk_u = 0
        execs: list[Exec] = []
        # diffs already seen once are re-applied on the new snapshot; for own queues they only cap (A10)
        self._resync = was_ready
        try:
            for d in list(self.recent):
                if d["u"] > last:
                    execs.extend(self.apply_diff(d, buffered=True))
        finally:
            self._resync = False
        self._check_cross(execs)
        return execs

    def restart(self) -> None:
        """The replay starts over (loop): forget buffered diffs; the next snapshot re-syncs (A10)."""
        self.recent.clear()
        self._tk_u = 0

    def apply_diff(self, d: dict[str, Any], buffered: bool = False) -> list[Exec]:
        """A recorded ``depthUpdate``: Binance sync rules, then absolute level updates (A5/A6)."""
        if not buffered:
            self.recent.append(d)
        if not self.ready:
            return _EMPTY
        u = d["u"]
        if u <= self.last_u:
            self.dropped_diffs += 1
            return _EMPTY
        if d["U"] > self.last_u + 1:
            self.gaps += 1  # the collector re-snapshots after a gap; meanwhile apply best effort
        self.last_u = u
        guard = self._tk_u > u  # an applied bookTicker is newer than this diff at the top
        if self._tk_u and not guard:
            self._tk_u = 0
        execs: list[Exec] = []
        b, a = d["b"], d["a"]
        self._apply_side(b, True, self._tk_bp if guard else None)
        self._apply_side(a, False, self._tk_ap if guard else None)
        self._dirty = True
        bb, ba = self.best_bid(), self.best_ask()
        if bb is not None and ba is not None and bb >= ba:
            self._uncross(b, a)
        if self.own_bids or self.own_asks:
            self._check_cross(execs)
        return execs

    def _apply_side(self, levels: list[Any], is_bid: bool, guard_p: int | None) -> None:
        """Apply one side of a diff: absolute quantities; A5 for own levels; consumption reset."""
        book = self.bids if is_bid else self.asks
        heap = self._bheap if is_bid else self._aheap
        own = self.own_bids if is_bid else self.own_asks
        cons = self.cons_bids if is_bid else self.cons_asks
        pend = self.pend_b if is_bid else self.pend_a
        track = self.track
        spec = self.spec
        pcache = spec._pcache
        qcache = spec._qcache
        push = heapq.heappush
        for ps, qs in levels:
            p = pcache.get(ps)
            if p is None:
                p = spec.price_u(ps)
            if guard_p is not None and (p >= guard_p if is_bid else p <= guard_p):
                continue  # the fused bookTicker already told us the newer state of the top
            q = qcache.get(qs)
            if q is None:
                q = spec.qty_u(qs)
            old = book.get(p, 0)
            if q:
                if not old:
                    push(heap, -p if is_bid else p)
                book[p] = q
            elif old:
                del book[p]
            if cons and p in cons:
                del cons[p]
            if own and p in own:
                self._depth_change(own[p], old, q, self._resync)
            if track:
                pend[p] = qs
        if len(heap) > 2 * len(book) + 256:
            self._rebuild_heaps()

    def _uncross(self, b: list[Any], a: list[Any]) -> None:
        """Latest update wins: drop the opposite levels a fresh level of this diff reached."""
        new_b = [self.spec.price_u(p) for p, q in b if self.spec.qty_u(q)]
        new_a = [self.spec.price_u(p) for p, q in a if self.spec.qty_u(q)]
        if new_b:
            top = max(new_b)
            for p in [p for p in self.asks if p <= top and p not in new_a]:
                self._set(False, p, 0)
        if new_a:
            low = min(new_a)
            for p in [p for p in self.bids if p >= low and p not in new_b]:
                self._set(True, p, 0)
        bb, ba = self.best_bid(), self.best_ask()
        if bb is not None and ba is not None and bb >= ba:  # both sides fresh: bids win
            for p in [p for p in self.asks if p <= bb]:
                self._set(False, p, 0)

    def apply_ticker(self, d: dict[str, Any]) -> list[Exec]:
        """A recorded ``bookTicker``: fused only if newer than the last applied diff (section 1)."""
        u = d["u"]
        if u <= self.last_u or not self.ready:
            self.stale_tickers += 1
            self.ticker_top = None
            return _EMPTY
        spec = self.spec
        pc = spec._pcache
        qc = spec._qcache
        s = d["b"]
        bp = pc.get(s) or spec.price_u(s)
        s = d["a"]
        ap = pc.get(s) or spec.price_u(s)
        s = d["B"]
        bq = qc.get(s)
        if bq is None:
            bq = spec.qty_u(s)
        s = d["A"]
        aq = qc.get(s)
        if aq is None:
            aq = spec.qty_u(s)
        self._tk_u = u
        self._tk_bp = bp
        self._tk_ap = ap
        simple = not (self.own_bids or self.own_asks or self.cons_bids or self.cons_asks)
        self.ticker_top = (bp, bq, ap, aq) if simple and bq and aq else None
        self.last_ticker = ((bp, bq), (ap, aq), (d["b"], d["B"]), (d["a"], d["A"]))
        bids = self.bids
        bb = self.best_bid()
        while bb is not None and bb > bp:  # levels better than the fused best are gone
            self._set(True, bb, 0)
            bb = self.best_bid()
        old = bids.get(bp, 0)
        if old != bq:
            if simple and bq and old:  # the common case: the best bid's size changed
                bids[bp] = bq
                self._dirty = True
                if self.track:
                    self.pend_b[bp] = d["B"]
            else:
                self._set(True, bp, bq)
        asks = self.asks
        ba = self.best_ask()
        while ba is not None and ba < ap:
            self._set(False, ba, 0)
            ba = self.best_ask()
        old = asks.get(ap, 0)
        if old != aq:
            if simple and aq and old:
                asks[ap] = aq
                self._dirty = True
                if self.track:
                    self.pend_a[ap] = d["A"]
            else:
                self._set(False, ap, aq)
        if simple or not (self.own_bids or self.own_asks):
            return _EMPTY
        execs: list[Exec] = []
        self._check_cross(execs)
        return execs

    def _set(self, is_bid: bool, p: int, q: int, cap_only: bool = False) -> None:
        """Set one recorded level (ticker fuse, uncross, re-snapshot), with A5/A10 queue updates."""
        book = self.bids if is_bid else self.asks
        old = book.get(p, 0)
        if q:
            if not old:
                heapq.heappush(self._bheap if is_bid else self._aheap, -p if is_bid else p)
            book[p] = q
        elif old:
            del book[p]
        (self.cons_bids if is_bid else self.cons_asks).pop(p, None)
        lvl = (self.own_bids if is_bid else self.own_asks).get(p)
        if lvl:
            self._depth_change(lvl, old, q, cap_only)
        self._touch(is_bid, p)

    # ------------------------------------------------------------------------------------------
    # queue model
    # ------------------------------------------------------------------------------------------
    def prob_behind(self, a: float, b: float) -> float:
        """p(a, b): share of a non-trade decrease that happened behind us (MATCHING.md b)."""
        fam, n = self.family, self.n
        scale = self.spec.qty_scale
        a /= scale
        b /= scale
        try:
            if fam == "power":
                an, bn = a**n, b**n
                p = bn / (an + bn)
            elif fam == "power2":
                p = b**n / (a + b) ** n
            elif fam == "power3":
                p = 1.0 - (a / (a + b)) ** n
            elif fam == "log":
                la, lb = math.log1p(a), math.log1p(b)
                p = lb / (la + lb)
            elif fam == "log2":
                p = math.log1p(b) / math.log1p(a + b)
            else:
                return 1.0
        except (ZeroDivisionError, OverflowError):
            return 1.0
        return p if math.isfinite(p) else 1.0

    def _depth_change(self, lvl: list[Order], Q: int, Q2: int, cap_only: bool) -> None:
        """A5 (or A10 when ``cap_only``): the recorded quantity at our price went Q -> Q2."""
        if self.queue_free:
            return
        prev = 0.0
        for o in lvl:
            a = o.a
            d = (Q - Q2) - o.c
            o.c = 0
            if cap_only or self.family == "risk_averse" or d < 0:
                a = min(a, Q2)
            else:
                b = Q - a if a < Q else 0.0
                p = self.prob_behind(a, b)
                a = a - (1.0 - p) * d + min(b - p * d, 0.0)
                a = min(a, Q2)
            if a < prev:  # FIFO: never ahead of an own order placed earlier at this price
                a = prev
            o.a = a if a > 0 else 0.0
            prev = o.a

    # ------------------------------------------------------------------------------------------
    # fills of resting orders from recorded data
    # ------------------------------------------------------------------------------------------
    def on_trade(self, p: int, q: int, buyer_is_maker: bool) -> list[Exec]:
        """A recorded print: ``m=true`` (seller aggressed) can fill own BUYs only, else own SELLs."""
        if buyer_is_maker:
            own = self.own_bids
            if not own or self._obb is None or self._obb < p:
                return _EMPTY
            through = sorted((x for x in own if x > p), reverse=True)
        else:
            own = self.own_asks
            if not own or self._oba is None or self._oba > p:
                return _EMPTY
            through = sorted(x for x in own if x < p)
        execs: list[Exec] = []
        for x in through:  # A2: a print beyond our price means our whole level traded
            for o in list(own[x]):
                self._fill_resting(o, o.leaves, execs, "A2")
        lvl = own.get(p)
        if lvl:
            if self.queue_free:
                for o in lvl:
                    o.c += q
            else:
                self._print_at(lvl, q, execs)  # A1 + A8
        self._prune(buyer_is_maker)
        return execs

    def _print_at(self, lvl: list[Order], T: int, execs: list[Exec]) -> None:
        """A1/A8: one print is one budget, consumed in queue order (market ahead, order, gap, order...)."""
        rem: float = T
        mkt: float = 0.0
        stop = False
        lot = self.spec.lot_u
        for o in list(lvl):
            o.c += T
            if stop:
                o.a = max(o.a - mkt, 0.0)
                continue
            gap = o.a - mkt
            if gap > 0:
                take = gap if gap < rem else rem
                rem -= take
                mkt += take
            o.a = max(o.a - mkt, 0.0)
            if rem <= 0:
                stop = True
                continue
            leaves = o.leaves
            if self.partial:
                r = int(rem)
                x = min(leaves, r - r % lot)
            else:
                x = leaves if rem * 2 >= lot else 0
            if x > 0:
                self._fill_resting(o, x, execs, "A1")
            rem -= x
            if o.leaves > 0 or rem <= 0:
                stop = True

    def _check_cross(self, execs: list[Exec]) -> None:
        """A3: the opposite (available) best reached a resting order: it fills at its price, as maker."""
        if self.own_bids and self._obb is not None:
            ask = self.avail_best_ask()
            if ask is not None and self._obb >= ask:
                for x in sorted((x for x in self.own_bids if x >= ask), reverse=True):
                    for o in list(self.own_bids[x]):
                        self._fill_resting(o, o.leaves, execs, "A3")
                self._prune(True)
        if self.own_asks and self._oba is not None:
            bid = self.avail_best_bid()
            if bid is not None and self._oba <= bid:
                for x in sorted(x for x in self.own_asks if x <= bid):
                    for o in list(self.own_asks[x]):
                        self._fill_resting(o, o.leaves, execs, "A3")
                self._prune(False)

    def _fill_resting(self, o: Order, x: int, execs: list[Exec], rule: str) -> None:
        if x <= 0:
            return
        o.executed_u += x
        execs.append(Exec("fill", o.price_u, x, o, None, rule))
        self._touch(o.is_buy, o.price_u)

    def _prune(self, is_bid: bool) -> None:
        """Drop finished orders from the FIFO levels of one side."""
        own = self.own_bids if is_bid else self.own_asks
        for p in list(own):
            lvl = own[p]
            keep = [o for o in lvl if o.leaves > 0]
            if len(keep) != len(lvl):
                for o in lvl:
                    if o.leaves <= 0:
                        o.resting = False
                if keep:
                    own[p] = keep
                else:
                    del own[p]
        self._own_best_refresh()

    # ------------------------------------------------------------------------------------------
    # own orders entering / leaving the book
    # ------------------------------------------------------------------------------------------
    def add_resting(self, o: Order) -> None:
        """A0: join the back of the queue at the recorded (available) quantity at our price."""
        is_bid = o.is_buy
        p = o.price_u
        rec = self.bids if is_bid else self.asks
        cons = self.cons_bids if is_bid else self.cons_asks
        own = self.own_bids if is_bid else self.own_asks
        q = rec.get(p, 0) - cons.get(p, 0)
        a = float(q) if q > 0 else 0.0
        lvl = own.get(p)
        if lvl:
            a = max(a, lvl[-1].a)
            lvl.append(o)
        else:
            own[p] = [o]
        o.a = a
        o.a_at_accept = a
        o.c = 0
        o.resting = True
        if is_bid:
            if self._obb is None or p > self._obb:
                self._obb = p
        elif self._oba is None or p < self._oba:
            self._oba = p
        self._touch(is_bid, p)

    def remove_resting(self, o: Order) -> None:
        """Cancel/expire: a market-only ``a`` needs no adjustment for the own orders behind (A8)."""
        own = self.own_bids if o.is_buy else self.own_asks
        lvl = own.get(o.price_u)
        if lvl and o in lvl:
            lvl.remove(o)
            if not lvl:
                del own[o.price_u]
            self._own_best_refresh()
            self._touch(o.is_buy, o.price_u)
        o.resting = False

    def would_take(self, is_buy: bool, price_u: int) -> bool:
        """True if a limit at ``price_u`` crosses the served opposite best (LIMIT_MAKER check)."""
        if is_buy:
            ask = self._served_or_avail_best(False)
            return ask is not None and price_u >= ask
        bid = self._served_or_avail_best(True)
        return bid is not None and price_u <= bid

    def _served_or_avail_best(self, is_bid: bool) -> int | None:
        if is_bid:
            p, o = self.avail_best_bid(), self._obb
            return o if p is None or (o is not None and o > p) else p
        p, o = self.avail_best_ask(), self._oba
        return o if p is None or (o is not None and o < p) else p

    # ------------------------------------------------------------------------------------------
    # taker walk (section e)
    # ------------------------------------------------------------------------------------------
    def _walk_prices(self, is_buy: bool, limit_u: int | None) -> Iterator[int]:
        rec = self.asks if is_buy else self.bids
        own = self.own_asks if is_buy else self.own_bids
        keys = rec.keys() | own.keys() if own else rec.keys()
        if limit_u is not None:
            cand = [p for p in keys if p <= limit_u] if is_buy else [p for p in keys if p >= limit_u]
            cand.sort(reverse=not is_buy)
            yield from cand
            return
        if is_buy:
            heap = list(keys)
            heapq.heapify(heap)
            while heap:
                yield heapq.heappop(heap)
        else:
            heap = [-p for p in keys]
            heapq.heapify(heap)
            while heap:
                yield -heapq.heappop(heap)

    def plan_take(
        self,
        taker: Order,
        limit_u: int | None,
        qty_u: int | None,
        quote_u: int | None,
    ) -> WalkResult:
        """Plan a taker walk without changing anything (used for FOK, balance checks, quote sizing).

        Exactly one of ``qty_u`` / ``quote_u`` bounds the walk. STP uses the taker's mode.
        """
        res = WalkResult()
        is_buy = taker.is_buy
        rec = self.asks if is_buy else self.bids
        cons = self.cons_asks if is_buy else self.cons_bids
        own = self.own_asks if is_buy else self.own_bids
        spec = self.spec
        rem_q = qty_u
        rem_quote = quote_u
        stp = taker.stp
        acct = taker.account

        def room(p: int, cap: float) -> int:
            cap_i = int(cap)
            if cap_i <= 0:
                return 0
            if rem_q is not None:
                return min(cap_i, rem_q)
            assert rem_quote is not None
            return min(cap_i, spec.qty_for_quote(p, rem_quote))

        def done(p: int) -> bool:
            if rem_q is not None:
                return rem_q <= 0
            assert rem_quote is not None
            return spec.qty_for_quote(p, rem_quote) <= 0

        def consume(p: int, x: int) -> None:
            nonlocal rem_q, rem_quote
            res.filled_u += x
            cost = spec.quote_floor(p, x)
            res.cost_u += cost
            if rem_q is not None:
                rem_q -= x
            else:
                assert rem_quote is not None
                rem_quote -= cost

        finished = False
        for p in self._walk_prices(is_buy, limit_u):
            if done(p):
                break
            avail = rec.get(p, 0) - cons.get(p, 0)
            if avail < 0:
                avail = 0
            taken = 0
            for o in own.get(p, ()):
                gap = min(math.ceil(o.a) - taken, avail - taken)
                if gap > 0:
                    x = room(p, gap)
                    if x:
                        res.steps.append(("mkt", p, x))
                        taken += x
                        consume(p, x)
                    if x < gap or done(p):
                        finished = True
                        break
                leaves = o.leaves
                if leaves <= 0:
                    continue
                if o.account is acct and stp != "NONE":
                    if stp == "EXPIRE_MAKER":
                        res.steps.append(("stp", p, o, stp, 0, leaves))
                        continue
                    # the taker's remaining quantity, in base units, at this price
                    if rem_q is not None:
                        taker_rem = rem_q
                    else:
                        assert rem_quote is not None
                        taker_rem = spec.qty_for_quote(p, rem_quote)
                    if stp == "DECREMENT":
                        y = min(taker_rem, leaves)
                        res.steps.append(("stp", p, o, stp, y, y))
                        if rem_q is not None:
                            rem_q -= y
                        else:
                            assert rem_quote is not None
                            rem_quote -= spec.quote_floor(p, y)
                        if y >= taker_rem:
                            res.taker_stp = True
                            finished = True
                            break
                        continue
                    # EXPIRE_TAKER / EXPIRE_BOTH: the taker's remaining quantity expires here
                    res.steps.append(("stp", p, o, stp, taker_rem, leaves if stp == "EXPIRE_BOTH" else 0))
                    res.taker_stp = True
                    finished = True
                    break
                x = room(p, leaves)
                if x:
                    res.steps.append(("own", p, o, x))
                    consume(p, x)
                if x < leaves or done(p):
                    finished = True
                    break
            if finished:
                break
            x = room(p, avail - taken)
            if x:
                res.steps.append(("mkt", p, x))
                consume(p, x)
        return res

    def execute_take(self, taker: Order, plan: WalkResult) -> list[Exec]:
        """Apply a plan: consume recorded liquidity, fill/expire own makers, record STP.

        Makers' quantities change here (the FIFO needs them); the taker's ``executed_u`` and
        ``prevented_u`` advance in the venue, exec by exec, so each report shows its own cumulative.
        """
        is_buy = taker.is_buy
        cons = self.cons_asks if is_buy else self.cons_bids
        own = self.own_asks if is_buy else self.own_bids
        execs: list[Exec] = []
        mkt_taken: dict[int, int] = {}
        for step in plan.steps:
            kind, p = step[0], step[1]
            if kind == "mkt":
                x = step[2]
                cons[p] = cons.get(p, 0) + x
                mkt_taken[p] = mkt_taken.get(p, 0) + x
                execs.append(Exec("fill", p, x, None, taker, "take"))
            elif kind == "own":
                o, x = step[2], step[3]
                o.executed_u += x
                execs.append(Exec("fill", p, x, o, taker, "take"))
            else:  # stp
                o, mode, tprev, mprev = step[2], step[3], step[4], step[5]
                o.prevented_u += mprev
                execs.append(Exec("stp", p, 0, o, taker, "stp", mode, tprev, mprev))
            self._touch(not is_buy, p)
        for p, x in mkt_taken.items():
            for o in own.get(p, ()):
                o.a = max(o.a - x, 0.0)
        self._prune(not is_buy)
        return execs
