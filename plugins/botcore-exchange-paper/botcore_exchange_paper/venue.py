"""The paper venue: Binance spot semantics over a replayed or synthetic market (pure logic).

Single-threaded by design: every call happens on the server's asyncio loop thread, so there are
no locks. The server authenticates requests and renders answers; the venue validates parameters
exactly as Binance does (raising ``BinanceError``), matches, moves funds and tells listeners what
to publish:

- ``on_market(stream, payload)``: ``<sym>@depth@100ms`` (served diffs, contiguous ``U = prev u + 1``),
  ``<sym>@bookTicker`` (``u`` = id of the served book state it shows, same counter as the diffs),
  ``<sym>@trade`` and ``<sym>@aggTrade``; payload = JSON bytes of the data object;
- ``on_user(api_key, event)``: ``executionReport`` / ``outboundAccountPosition`` dicts, per action in
  Binance's order (reports first, then one position event per changed account).

Money: integer units end to end (see filters.py); commissions are charged in the asset received
(BUY -> base, SELL -> quote) and rounded half-up to 8 decimals, which matches Binance's own
reports (e.g. 0.000286 BTC at 0.1% -> "0.00000029", tests/data/userdata); a trade's quote amount
is price*qty truncated to 8 decimals. Whatever a user pays, another account receives (ledger).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

import msgspec

from botcore_exchange_paper import errors as E
from botcore_exchange_paper.accounts import Account, Ledger
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.filters import (
    CLIENT_ID_RE,
    INTEGER_RE,
    NewOrderParams,
    SymbolSpec,
    fmt,
    parse_new_order,
)
from botcore_exchange_paper.market import (
    DEPTH,
    SNAPSHOT,
    TICKER,
    TRADE,
    MarketEvent,
    MarketSource,
    ReplaySource,
    SyntheticSource,
    symbols_in,
)
from botcore_exchange_paper.matching import Book, Exec, Order

log = logging.getLogger("botcore.paper.venue")

DEFAULT_BALANCES = {"USDT": Decimal(10_000), "BTC": Decimal(1), "ETH": Decimal(10), "BNB": Decimal(10)}
OWN_TRADE_ID_BASE = 10**12
"""Own fills get trade ids from here up, apart from the recorded public trade ids."""
OWN_TRADE_IDS_PER_MS = 1000
"""Own trade ids start at ``OWN_TRADE_ID_BASE + start_ms * OWN_TRADE_IDS_PER_MS``: like Binance's,
they never repeat, even across venue restarts. A journal that outlives one paper run (restart
recovery, the fills table keyed by trade id, the reconcile watermark) must not see run 2's first
fill carry run 1's first id. Stays below 2**53 (exact in JSON doubles) until the year 2255."""
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_encode = msgspec.json.encode


class VenueListener(Protocol):
    def on_market(self, stream: str, payload: bytes) -> None: ...

    def on_user(self, api_key: str, event: dict[str, Any]) -> None: ...


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class _Stats:
    """Public trade statistics of one symbol (24hr ticker, avgPrice VWAP over 5 minutes of market time)."""

    __slots__ = ("first_id", "last_id", "count", "open_u", "high_u", "low_u", "last_u", "last_qty",
                 "volume_u", "quote_u", "window", "w_pq", "w_q")

    def __init__(self) -> None:
        self.first_id = -1
        self.last_id = -1
        self.count = 0
        self.open_u = self.high_u = self.low_u = self.last_u = 0
        self.last_qty = 0
        self.volume_u = 0
        self.quote_u = 0
        self.window: deque[tuple[int, int, int]] = deque()
        self.w_pq = 0
        self.w_q = 0

    def add(self, trade_id: int, p: int, q: int, quote: int, mkt_ms: int) -> None:
        if self.count == 0:
            self.first_id = trade_id
            self.open_u = self.high_u = self.low_u = p
        self.count += 1
        self.last_id = trade_id
        self.last_u = p
        self.last_qty = q
        if p > self.high_u:
            self.high_u = p
        if p < self.low_u:
            self.low_u = p
        self.volume_u += q
        self.quote_u += quote
        w = self.window
        w.append((mkt_ms, p, q))
        self.w_pq += p * q
        self.w_q += q
        cutoff = mkt_ms - 300_000
        while w and w[0][0] < cutoff:
            _, op, oq = w.popleft()
            self.w_pq -= op * oq
            self.w_q -= oq


class Venue:
    """Binance spot venue over a market source. See the module docstring."""

    def __init__(self, config: PaperConfig | None = None, clock: Callable[[], int] = _wall_ms) -> None:
        self.config = config = config or PaperConfig()
        self._clock = clock
        self._rng = random.Random(config.seed)
        with open(config.exchange_info_path, encoding="utf-8") as fh:
            self._xinfo: dict[str, Any] = json.load(fh)
        all_specs = {s["symbol"]: s for s in self._xinfo["symbols"]}
        # market source and symbols
        if config.synthetic:
            names = config.symbols or (["BTCUSDT"] if "BTCUSDT" in all_specs else [next(iter(all_specs))])
        else:
            from botcore.replay import shipped_recording

            self._paths = list(config.recordings) if config.recordings else shipped_recording()
            names = config.symbols or symbols_in(self._paths)
        unknown = [s for s in names if s not in all_specs]
        if unknown:
            raise ValueError(f"paper.symbols: not in exchangeInfo: {', '.join(unknown)}")
        self.specs: dict[str, SymbolSpec] = {s: SymbolSpec(all_specs[s]) for s in names}
        family = config.fill.queue_family()
        self.books: dict[str, Book] = {
            s: Book(spec, family, config.fill.partial, config.show_own_orders) for s, spec in self.specs.items()
        }
        self._source: MarketSource
        if config.synthetic:
            self._source = SyntheticSource(self.specs, config.seed, config.synthetic_prices)
        else:
            self._source = ReplaySource(self._paths, list(self.specs))
        # orders, trades, ids
        self._orders: dict[str, dict[int, Order]] = {s: {} for s in self.specs}
        self._open: dict[Account, dict[tuple[str, int], Order]] = {}
        self._by_cid: dict[tuple[Account, str, str], Order] = {}
        self._trades: dict[tuple[Account, str], list[dict[str, Any]]] = {}
        self._next_order_id = dict.fromkeys(self.specs, 1)
        self._next_trade_id = dict.fromkeys(self.specs, OWN_TRADE_ID_BASE + int(clock()) * OWN_TRADE_IDS_PER_MS)
        self._next_agg_id = dict.fromkeys(self.specs, 1)
        self._next_pm_id = dict.fromkeys(self.specs, 0)
        self._exec_id = 1
        self._trade_offset = dict.fromkeys(self.specs, 0)
        self._last_rec_trade = dict.fromkeys(self.specs, 0)
        self._stats = {s: _Stats() for s in self.specs}
        self._agg: dict[str, list[Any] | None] = dict.fromkeys(self.specs)
        # accounts
        self.ledger = Ledger()
        self._maker_num = int(config.maker_commission.scaleb(8))
        self._taker_num = int(config.taker_commission.scaleb(8))
        for spec_acct in config.accounts:
            self.add_account(spec_acct.api_key, spec_acct.api_secret, spec_acct.balances)
        if not config.accounts:
            balances = dict(DEFAULT_BALANCES)
            for spec in self.specs.values():
                balances.setdefault(spec.base, Decimal(1000))
                balances.setdefault(spec.quote, Decimal(10_000))
            key = "paper-" + secrets.token_hex(16)
            self.add_account(key, secrets.token_hex(32), balances)
            log.info("paper venue: generated account api_key=%s", key)
        # streams
        self._listeners: list[VenueListener] = []
        self._streams = {
            s: (f"{s.lower()}@depth@100ms", f"{s.lower()}@bookTicker", f"{s.lower()}@trade", f"{s.lower()}@aggTrade")
            for s in self.specs
        }
        self._out: list[tuple[Account, dict[str, Any]]] = []
        self._drop: dict[str, int] = {}
        self._touched: dict[str, None] = {}
        self._prints: list[tuple[str, dict[str, Any]]] = []
        # market progress / pacing
        self._events = 0
        self._done = False
        self._mkt_ns = 0
        self._pace: tuple[float, int, float] | None = None  # (loop time at base, ns at base, speed)
        self._prime()

    # ------------------------------------------------------------------------------------------
    # basics
    # ------------------------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self._clock()

    @property
    def accounts(self) -> list[Account]:
        return list(self.ledger.users.values())

    def account_for_key(self, api_key: str) -> Account | None:
        return self.ledger.users.get(api_key)

    def add_account(self, api_key: str, api_secret: str, balances: dict[str, Decimal]) -> Account:
        acct = self.ledger.add(api_key, api_secret, {a.upper(): Decimal(v) for a, v in balances.items()})
        acct.update_time = self.now_ms()
        self._open[acct] = {}
        self.ledger.changed.pop(acct, None)
        return acct

    def deposit(self, account: Account, asset: str, amount: Decimal) -> dict[str, Any]:
        """A deposit (amount > 0) or withdrawal (< 0) outside trading: ``balanceUpdate`` then
        ``outboundAccountPosition`` (testnet-style top-ups, reconciliation tests).

        Funds come from / go to the market account, so conservation still holds; a withdrawal larger
        than the free balance is -2010 insufficient balance.
        """
        asset = asset.upper()
        units = Decimal(amount).scaleb(8)
        if units != units.to_integral_value() or units == 0:
            raise E.BinanceError(-1100, "Illegal characters found in parameter 'amount'.")
        n = int(units)

        def run() -> dict[str, Any]:
            led = self.ledger
            if n > 0:
                led.pay(led.market, asset, n, account, from_locked=False)
            else:
                if account.free.get(asset, 0) < -n:
                    raise E.rejected(E.INSUFFICIENT_BALANCE)
                led.pay(account, asset, -n, led.market, from_locked=False)
            now = self.now_ms()
            self._out.append((account, {"e": "balanceUpdate", "E": now, "a": asset, "d": fmt(n), "T": now}))
            return {"asset": asset, "free": fmt(account.free.get(asset, 0)), "locked": fmt(account.locked.get(asset, 0))}

        return self._act(run)

    @property
    def market_done(self) -> bool:
        return self._done

    @property
    def events_processed(self) -> int:
        return self._events

    @property
    def market_ns(self) -> int:
        """Recorded (or synthetic) time of the last market event processed, ns; 0 before any."""
        return self._mkt_ns

    def response_delay_s(self) -> float:
        """Wall seconds the server should wait before answering (the configured response latency)."""
        return self._latency_s(self.config.fill.response_latency_ms)

    def _latency_s(self, ms: float) -> float:
        if ms <= 0:
            return 0.0
        speed = self.config.speed
        return ms / 1000.0 / (speed if speed > 0 else 1.0)

    # ------------------------------------------------------------------------------------------
    # listeners
    # ------------------------------------------------------------------------------------------
    def add_listener(self, listener: VenueListener) -> None:
        if not self._listeners:
            for book in self.books.values():
                book.track = True
                book.take_diff()  # ids so far are covered by the REST snapshot a client must fetch
                book.pub_top = book.served_top()
        self._listeners.append(listener)

    def remove_listener(self, listener: VenueListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)
        if not self._listeners:
            for book in self.books.values():
                book.track = False
                book.pend_b = {}
                book.pend_a = {}

    def drop_next_user_event(self, api_key: str) -> None:
        """Fault injection: the next user-data event for this key is lost (a missed fill)."""
        self._drop[api_key] = self._drop.get(api_key, 0) + 1

    def _emit_market(self, stream: str, payload: dict[str, Any]) -> None:
        data = _encode(payload)
        for listener in list(self._listeners):
            try:
                listener.on_market(stream, data)
            except Exception:  # a broken listener must not stop the market
                log.exception("market listener failed")

    def _deliver_user(self, events: list[tuple[Account, dict[str, Any]]]) -> None:
        for acct, ev in events:
            key = acct.api_key
            if self._drop.get(key):
                self._drop[key] -= 1
                continue
            for listener in list(self._listeners):
                try:
                    listener.on_user(key, ev)
                except Exception:
                    log.exception("user listener failed")

    # ------------------------------------------------------------------------------------------
    # the market
    # ------------------------------------------------------------------------------------------
    def _prime(self) -> None:
        """Consume the recording up to every symbol's first snapshot, so the books exist at once."""
        budget = 1_000_000
        while not all(b.ready for b in self.books.values()):
            ev = self._source.next()
            budget -= 1
            if ev is None or budget <= 0:
                missing = [s for s, b in self.books.items() if not b.ready]
                raise ValueError(f"no depth snapshot in the market data for {', '.join(missing)}")
            self._process(ev)

    def step(self, n: int = 1) -> int:
        """Deterministically process the next ``n`` market events now; returns how many were processed."""
        done = 0
        nxt = self._source.next
        process = self._process
        while done < n:
            ev = nxt()
            if ev is None:
                if self.config.loop:
                    self._restart()
                    continue
                self._finish_market()
                break
            process(ev)
            done += 1
        self._flush_aggs()
        return done

    def _restart(self) -> None:
        for sym, book in self.books.items():
            book.restart()
            # recorded trade ids continue increasing on every pass
            self._trade_offset[sym] = self._last_rec_trade[sym]
        self._source.restart()
        if self._pace is not None:
            self._pace = None

    def _finish_market(self) -> None:
        if not self._done:
            self._done = True
            self._flush_aggs()
            for sym, book in self.books.items():
                book.end_batch()
                self._publish(sym, book, True)

    async def run_market(self) -> None:
        """Pace the market on the running loop (speed from config); returns at the end unless looping."""
        loop = asyncio.get_running_loop()
        speed = float(self.config.speed)
        src = self._source
        n = 0
        while True:
            ev = src.peek()
            if ev is None:
                if self.config.loop:
                    self._restart()
                    await asyncio.sleep(0)
                    continue
                self._finish_market()
                return
            if speed > 0:
                if self._pace is None:
                    self._pace = (loop.time(), ev.ns, speed)
                t0, ns0, _ = self._pace
                delay = t0 + (ev.ns - ns0) / 1e9 / speed - loop.time()
                if delay > 0.0005:
                    self._flush_aggs()
                    await asyncio.sleep(delay)
                    continue
            ev = src.next()
            assert ev is not None
            self._process(ev)
            n += 1
            if n % 256 == 0:
                self._flush_aggs()
                await asyncio.sleep(0)

    def _market_now_ns(self) -> int:
        if self._pace is not None:
            t0, ns0, speed = self._pace
            try:
                now = asyncio.get_running_loop().time()
            except RuntimeError:
                return self._mkt_ns
            return max(self._mkt_ns, ns0 + int((now - t0) * 1e9 * speed))
        return self._mkt_ns

    def _advance_for_entry(self) -> None:
        """Entry latency: the request executes against the market ``entry_latency_ms`` later."""
        ms = self.config.fill.entry_latency_ms
        if ms <= 0 or self._done:
            return
        target = self._market_now_ns() + int(ms * 1_000_000)
        src = self._source
        while True:
            ev = src.peek()
            if ev is None or ev.ns > target:
                break
            self._process(src.next())  # type: ignore[arg-type]
        self._flush_aggs()

    def _process(self, ev: MarketEvent) -> None:
        ns, kind, sym, data = ev
        self._mkt_ns = ns
        self._events += 1
        book = self.books.get(sym)
        if book is None:
            return
        if kind == TICKER:
            execs = book.apply_ticker(data)
        elif kind == DEPTH:
            execs = book.apply_diff(data)
        elif kind == TRADE:
            execs = self._on_trade(sym, book, data)
        else:
            execs = book.apply_snapshot(data)
        book.end_batch()
        if execs:
            self._settle(book, execs)
            self._touched.clear()
            book.end_batch()
            if self._out or self.ledger.changed:
                self._dispatch_user()
        if self._listeners:
            # served diffs follow the recording's cadence (its diffs), plus own changes at once
            if kind == TICKER and not execs and book.ticker_top is not None:
                top = book.ticker_top
                if top != book.pub_top:  # the served top is the recorded ticker: forward its strings
                    book.pub_top = top
                    self._emit_market(self._streams[sym][1], {"u": book.uid, "s": sym, "b": data["b"],
                                                              "B": data["B"], "a": data["a"], "A": data["A"]})
            else:
                self._publish(sym, book, kind in (DEPTH, SNAPSHOT) or bool(execs))

    def _on_trade(self, sym: str, book: Book, d: dict[str, Any]) -> list[Exec]:
        spec = book.spec
        pc = spec._pcache
        p = pc.get(d["p"]) or spec.price_u(d["p"])
        q = spec.qty_u(d["q"])
        m = d["m"]
        tid = d["t"] + self._trade_offset[sym]
        self._last_rec_trade[sym] = tid
        self._stats[sym].add(tid, p, q, spec.quote_floor(p, q), self._mkt_ns // 1_000_000)
        execs = book.on_trade(p, q, m)
        if self._listeners:
            now = self.now_ms()
            self._emit_market(
                self._streams[sym][2],
                {"e": "trade", "E": now, "s": sym, "t": tid, "p": d["p"], "q": d["q"], "T": now, "m": m, "M": True},
            )
            self._agg_add(sym, tid, d["p"], q, m, d.get("T", 0), now)
        return execs

    # --- aggTrade: consecutive prints of one symbol at one time, price and side ------------------
    def _agg_add(self, sym: str, tid: int, p_str: str, q: int, m: bool, key_t: int, now: int) -> None:
        cur = self._agg[sym]
        if cur is not None and cur[1] == p_str and cur[4] == m and cur[6] == key_t:
            cur[2] += q
            cur[3] = tid
        else:
            if cur is not None:
                self._emit_agg(sym, cur)
            self._agg[sym] = [tid, p_str, q, tid, m, now, key_t]
        nxt = self._source.peek()
        if nxt is None or nxt.kind != TRADE or nxt.symbol != sym or nxt.data.get("T") != key_t or nxt.data["p"] != p_str:
            self._emit_agg(sym, self._agg[sym])  # type: ignore[arg-type]
            self._agg[sym] = None

    def _emit_agg(self, sym: str, cur: list[Any]) -> None:
        first, p_str, q, last, m, now, _ = cur
        aid = self._next_agg_id[sym]
        self._next_agg_id[sym] = aid + 1
        self._emit_market(
            self._streams[sym][3],
            {"e": "aggTrade", "E": now, "s": sym, "a": aid, "p": p_str, "q": self.specs[sym].fmt_qty(q),
             "f": first, "l": last, "T": now, "m": m, "M": True},
        )

    def _flush_aggs(self) -> None:
        for sym, cur in self._agg.items():
            if cur is not None:
                self._emit_agg(sym, cur)
                self._agg[sym] = None

    # --- served feed ----------------------------------------------------------------------------
    def _publish(self, sym: str, book: Book, flush_diff: bool) -> None:
        """Publish the served changes of one engine event: own prints, the diff, the bookTicker."""
        if not self._listeners:
            if flush_diff:
                book.take_diff()
            self._prints.clear()
            return
        streams = self._streams[sym]
        spec = book.spec
        now = self.now_ms()
        if self._prints:
            prints, self._prints = self._prints, []
            for psym, pr in prints:
                self._emit_market(self._streams[psym][2], pr)
                self._emit_market(
                    self._streams[psym][3],
                    {"e": "aggTrade", "E": pr["E"], "s": psym, "a": self._agg_id(psym), "p": pr["p"], "q": pr["q"],
                     "f": pr["t"], "l": pr["t"], "T": pr["T"], "m": pr["m"], "M": True},
                )
        if flush_diff:
            diff = book.take_diff()
            if diff is not None:
                U, u, bl, al = diff
                self._emit_market(streams[0], {"e": "depthUpdate", "E": now, "s": sym, "U": U, "u": u, "b": bl, "a": al})
        top = book.served_top()
        if top != book.pub_top:
            book.pub_top = top
            fp, fq = spec.fmt_price, spec.fmt_qty
            tk = book.last_ticker
            if tk is not None and tk[0] == top[:2]:  # reuse the recorded strings where they are exact
                b, bq = tk[2]
            else:
                b, bq = fp(top[0]), fq(top[1])
            if tk is not None and tk[1] == top[2:]:
                a, aq = tk[3]
            else:
                a, aq = fp(top[2]), fq(top[3])
            self._emit_market(streams[1], {"u": book.uid, "s": sym, "b": b, "B": bq, "a": a, "A": aq})

    def _agg_id(self, sym: str) -> int:
        aid = self._next_agg_id[sym]
        self._next_agg_id[sym] = aid + 1
        return aid

    # ------------------------------------------------------------------------------------------
    # public market data (REST)
    # ------------------------------------------------------------------------------------------
    def _spec(self, symbol: str | None) -> SymbolSpec:
        if not symbol:
            raise E.mandatory("symbol")
        spec = self.specs.get(symbol)
        if spec is None:
            raise E.bad_symbol()
        return spec

    def exchange_info(self, symbol: str | None = None, symbols: list[str] | None = None) -> dict[str, Any]:
        if symbol and symbols:
            raise E.BinanceError(-1128, "Combination of optional parameters invalid.")
        wanted = [symbol] if symbol else (symbols or list(self.specs))
        for s in wanted:
            if s not in self.specs:
                raise E.bad_symbol()
        info = {k: v for k, v in self._xinfo.items() if k != "symbols"}
        info["serverTime"] = self.now_ms()
        info["symbols"] = [self.specs[s].info for s in wanted]
        return info

    def depth(self, symbol: str, limit: int = 100) -> dict[str, Any]:
        """The served book; ``lastUpdateId`` is the id of the last change in it (pending diffs are flushed
        first, so the next published diff starts exactly at ``lastUpdateId + 1``)."""
        spec = self._spec(symbol)
        limit = max(1, min(int(limit), 5000))
        book = self.books[symbol]
        book.end_batch()
        self._publish(symbol, book, True)
        fp, fq = spec.fmt_price, spec.fmt_qty
        return {
            "lastUpdateId": book.uid,
            "bids": [[fp(p), fq(q)] for p, q in book.served_levels(True, limit)],
            "asks": [[fp(p), fq(q)] for p, q in book.served_levels(False, limit)],
        }

    def book_ticker(self, symbol: str | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        if symbol is not None:
            return self._ticker_one(self._spec(symbol))
        return [self._ticker_one(spec) for spec in self.specs.values()]

    def _ticker_one(self, spec: SymbolSpec) -> dict[str, Any]:
        bp, bq, ap, aq = self.books[spec.symbol].served_top()
        return {"symbol": spec.symbol, "bidPrice": spec.fmt_price(bp), "bidQty": spec.fmt_qty(bq),
                "askPrice": spec.fmt_price(ap), "askQty": spec.fmt_qty(aq)}

    def ticker_24hr(self, symbol: str | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        if symbol is not None:
            return self._ticker24(self._spec(symbol))
        return [self._ticker24(spec) for spec in self.specs.values()]

    def _ticker24(self, spec: SymbolSpec) -> dict[str, Any]:
        st = self._stats[spec.symbol]
        bp, bq, ap, aq = self.books[spec.symbol].served_top()
        now = self.now_ms()
        change = st.last_u - st.open_u
        pct = Decimal(change * 100) / Decimal(st.open_u) if st.open_u else Decimal(0)
        wavg = st.quote_u * spec.quote_div // st.volume_u if st.volume_u else 0
        fp, fq = spec.fmt_price, spec.fmt_qty
        return {
            "symbol": spec.symbol, "priceChange": fp(change), "priceChangePercent": f"{pct:.3f}",
            "weightedAvgPrice": fmt(wavg, spec.pd), "prevClosePrice": fp(st.open_u), "lastPrice": fp(st.last_u),
            "lastQty": fq(st.last_qty), "bidPrice": fp(bp), "bidQty": fq(bq), "askPrice": fp(ap),
            "askQty": fq(aq), "openPrice": fp(st.open_u), "highPrice": fp(st.high_u), "lowPrice": fp(st.low_u),
            "volume": fq(st.volume_u), "quoteVolume": spec.fmt_quote(st.quote_u), "openTime": now - 86_400_000,
            "closeTime": now, "firstId": st.first_id, "lastId": st.last_id, "count": st.count,
        }

    def _avg_u(self, symbol: str) -> int | None:
        """The PERCENT_PRICE / market NOTIONAL reference: 5-minute VWAP, else last price, else mid."""
        st = self._stats.get(symbol)
        if st is not None and st.w_q:
            return st.w_pq // st.w_q
        if st is not None and st.count:
            return st.last_u
        book = self.books[symbol]
        bb, ba = book.best_bid(), book.best_ask()
        if bb is not None and ba is not None:
            return (bb + ba) // 2
        return bb or ba

    def avg_price(self, symbol: str) -> dict[str, Any]:
        spec = self._spec(symbol)
        avg = self._avg_u(symbol) or 0
        return {"mins": 5, "price": fmt(avg, spec.pd), "closeTime": self.now_ms()}

    # ------------------------------------------------------------------------------------------
    # actions: buffered user events, one position event per changed account, then the feed
    # ------------------------------------------------------------------------------------------
    def _dispatch_user(self) -> None:
        now = self.now_ms()
        events, self._out = self._out, []
        for acct, assets in self.ledger.take_changes().items():
            acct.update_time = now
            events.append(
                (acct, {"e": "outboundAccountPosition", "E": now, "u": now,
                        "B": [{"a": a, "f": fmt(acct.free.get(a, 0)), "l": fmt(acct.locked.get(a, 0))} for a in assets]})
            )
        if not events:
            return
        delay = self._latency_s(self.config.fill.response_latency_ms)
        if delay > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                loop.call_later(delay, self._deliver_user, events)
                return
        self._deliver_user(events)

    def _finish_action(self) -> None:
        for sym in list(self._touched):
            book = self.books[sym]
            book.end_batch()
        if self._out or self.ledger.changed:
            self._dispatch_user()
        for sym in list(self._touched):
            self._publish(sym, self.books[sym], True)
        self._touched.clear()

    def _act(self, fn: Callable[[], Any]) -> Any:
        self._advance_for_entry()
        try:
            return fn()
        finally:
            self._finish_action()

    # ------------------------------------------------------------------------------------------
    # order placement
    # ------------------------------------------------------------------------------------------
    def _parse(self, account: Account, params: dict[str, str]) -> NewOrderParams:
        return parse_new_order(
            params,
            self.specs,
            open_on_symbol=lambda s: sum(1 for (sym, _), o in self._open[account].items() if sym == s),
            open_total=lambda: len(self._open[account]),
            avg_price_u=self._avg_u,
            exchange_filters=self._xinfo.get("exchangeFilters") or [],
        )

    def place_order(self, account: Account, params: dict[str, str], *, test: bool = False) -> dict[str, Any]:
        if test:
            self._parse(account, params)
            if str(params.get("computeCommissionRates", "")).lower() == "true":
                m, t = fmt(self._maker_num), fmt(self._taker_num)
                zero = fmt(0)
                return {
                    "standardCommissionForOrder": {"maker": m, "taker": t},
                    "specialCommissionForOrder": {"maker": zero, "taker": zero},
                    "taxCommissionForOrder": {"maker": zero, "taker": zero},
                    "discount": {"enabledForAccount": False, "enabledForSymbol": False, "discountAsset": "BNB",
                                 "discount": fmt(0)},
                }
            return {}
        return self._act(lambda: self._new_order(account, self._parse(account, params)))

    def external_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        """An order "placed outside the bot" (e.g. on the website): same path, flagged, ``web_`` id."""
        params = dict(params)
        if not params.get("newClientOrderId"):
            params["newClientOrderId"] = "web_" + "".join(self._rng.choice("0123456789abcdef") for _ in range(32))
        resp = self._act(lambda: self._new_order(account, self._parse(account, params), external=True))
        return resp

    def _gen_client_id(self) -> str:
        return "".join(self._rng.choice(_B62) for _ in range(22))

    def _new_order(self, account: Account, req: NewOrderParams, external: bool = False) -> dict[str, Any]:
        spec = req.spec
        book = self.books[spec.symbol]
        now = self.now_ms()
        is_buy = req.side == "BUY"
        o = Order(account, spec.symbol, 0, req.client_id or "", req.side, req.type, req.tif, req.price_u,
                  req.qty_u, req.quote_qty_u, req.stp, now)
        plan = None
        fok_fail = False
        if req.type == "MARKET":
            if req.quote_qty_u:
                plan = book.plan_take(o, None, None, req.quote_qty_u)
                prevented = sum(s[4] for s in plan.steps if s[0] == "stp")
                o.qty_u = plan.filled_u + prevented
                if o.qty_u <= 0:
                    if not (book.bids if not is_buy else book.asks) and not (book.own_bids if not is_buy else book.own_asks):
                        raise E.rejected(E.NO_LIQUIDITY)
                    raise E.filter_failure("LOT_SIZE")
            else:
                plan = book.plan_take(o, None, req.qty_u, None)
            if is_buy:
                lock_asset, lock = spec.quote, (req.quote_qty_u or plan.cost_u)
            else:
                lock_asset, lock = spec.base, o.qty_u
        else:
            if is_buy:
                lock_asset, lock = spec.quote, spec.quote_ceil(req.price_u, req.qty_u)
            else:
                lock_asset, lock = spec.base, req.qty_u
            if req.type == "LIMIT" and book.would_take(is_buy, req.price_u):
                plan = book.plan_take(o, req.price_u, req.qty_u, None)
                if req.tif == "FOK" and (plan.filled_u < req.qty_u or plan.taker_stp):
                    fok_fail = True
        # engine checks, in Binance's order
        if not self.ledger.can_lock(account, lock_asset, lock):
            raise E.rejected(E.INSUFFICIENT_BALANCE)
        if req.type == "LIMIT_MAKER" and book.would_take(is_buy, req.price_u):
            raise E.rejected(E.WOULD_MATCH)
        if req.client_id is not None:
            prev = self._by_cid.get((account, spec.symbol, req.client_id))
            if prev is not None and prev.is_open:
                raise E.rejected(E.DUPLICATE_ORDER)
            if not CLIENT_ID_RE.match(req.client_id):
                raise E.illegal_chars("newClientOrderId", E.CLIENT_ID_RANGE)
        # accepted: from here on nothing may fail
        o.order_id = self._next_order_id[spec.symbol]
        self._next_order_id[spec.symbol] += 1
        if not o.client_id:
            o.client_id = self._gen_client_id()
        o.external = external
        o.strategy_id, o.strategy_type = req.strategy_id, req.strategy_type
        self.ledger.lock(account, lock_asset, lock)
        o.lock_asset, o.locked_u = lock_asset, lock
        self._orders[spec.symbol][o.order_id] = o
        self._open[account][(spec.symbol, o.order_id)] = o
        self._by_cid[(account, spec.symbol, o.client_id)] = o
        self._touched[spec.symbol] = None
        self._report(o, "NEW", w=True)
        fills: list[dict[str, Any]] = []
        prevented: list[dict[str, Any]] = []
        if plan is not None and not fok_fail:
            execs = book.execute_take(o, plan)
            self._settle(book, execs, taker_fills=fills, prevented=prevented)
        if o.is_open:  # what was not filled now: expire (MARKET/IOC/FOK) or rest (GTC)
            if req.type == "MARKET":
                self._expire(o, "EXPIRED", "INSUFFICIENT_LIQUIDITY")
            elif req.tif == "IOC":
                self._expire(o, "EXPIRED", "UNFILLED_IOC_QUANTITY_EXPIRED")
            elif req.tif == "FOK":
                self._expire(o, "EXPIRED", "UNFILLED_FOK_ORDER_EXPIRED")
            else:
                book.add_resting(o)
                self._release_excess(o)
        return self._order_response(o, req.resp_type, fills, prevented)

    def _order_response(self, o: Order, resp_type: str, fills: list[dict[str, Any]],
                        prevented: list[dict[str, Any]]) -> dict[str, Any]:
        spec = self.specs[o.symbol]
        out: dict[str, Any] = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1,
                               "clientOrderId": o.client_id, "transactTime": o.time}
        if resp_type == "ACK":
            return out
        out.update(
            price=spec.fmt_price(o.price_u), origQty=spec.fmt_qty(o.qty_u), executedQty=spec.fmt_qty(o.executed_u),
            origQuoteOrderQty=spec.fmt_quote(o.quote_qty_u), cummulativeQuoteQty=spec.fmt_quote(o.cum_quote_u),
            status=o.status, timeInForce=o.tif, type=o.type, side=o.side, workingTime=o.working_time,
        )
        if resp_type == "FULL":
            out["fills"] = fills
            if prevented:
                out["preventedMatches"] = prevented
        out["selfTradePreventionMode"] = o.stp
        self._conditional_fields(o, out)
        return out

    def _conditional_fields(self, o: Order, out: dict[str, Any]) -> None:
        spec = self.specs[o.symbol]
        if o.prevented_match_id is not None:
            out["preventedMatchId"] = o.prevented_match_id
            out["preventedQuantity"] = spec.fmt_qty(o.prevented_u)
        if o.strategy_id is not None:
            out["strategyId"] = o.strategy_id
        if o.strategy_type is not None:
            out["strategyType"] = o.strategy_type
        if o.expiry_reason is not None:
            out["expiryReason"] = o.expiry_reason

    # ------------------------------------------------------------------------------------------
    # settlement
    # ------------------------------------------------------------------------------------------
    def _settle(self, book: Book, execs: list[Exec], taker_fills: list[dict[str, Any]] | None = None,
                prevented: list[dict[str, Any]] | None = None) -> None:
        self._touched[book.spec.symbol] = None
        for ex in execs:
            if ex.kind == "fill":
                fill = self._settle_fill(book, ex)
                if taker_fills is not None and ex.taker is not None:
                    taker_fills.append(fill)
            else:
                pm = self._settle_stp(book, ex)
                if prevented is not None:
                    prevented.append(pm)

    def _commission(self, received: int, is_maker: bool) -> int:
        num = self._maker_num if is_maker else self._taker_num
        return (2 * received * num + 10**8) // (2 * 10**8)  # half-up to 8 decimals

    def _settle_fill(self, book: Book, ex: Exec) -> dict[str, Any]:
        spec = book.spec
        p, x = ex.price_u, ex.qty_u
        quote = spec.quote_floor(p, x)
        maker, taker = ex.maker, ex.taker
        if taker is not None:
            taker.executed_u += x  # the book advanced makers itself; takers advance here, fill by fill
        one = taker if taker is not None else maker
        assert one is not None
        if maker is not None and taker is not None:
            buyer, seller = (maker, taker) if maker.is_buy else (taker, maker)
        elif one.is_buy:
            buyer, seller = one, None
        else:
            buyer, seller = None, one
        ledger = self.ledger
        mkt = ledger.market
        # base: seller -> buyer; quote: buyer -> seller
        ledger.pay(seller.account if seller else mkt, spec.base, x, buyer.account if buyer else mkt,
                   from_locked=seller is not None)
        if seller is not None:
            seller.locked_u -= x
        ledger.pay(buyer.account if buyer else mkt, spec.quote, quote, seller.account if seller else mkt,
                   from_locked=buyer is not None)
        if buyer is not None:
            buyer.locked_u -= quote
        tid = self._next_trade_id[spec.symbol]
        self._next_trade_id[spec.symbol] = tid + 1
        now = self.now_ms()
        taker_fill: dict[str, Any] = {}
        for o in (buyer, seller):
            if o is None:
                continue
            is_maker = o is maker
            received, asset = (x, spec.base) if o.is_buy else (quote, spec.quote)
            comm = self._commission(received, is_maker)
            ledger.pay(o.account, asset, comm, ledger.fees, from_locked=False)
            o.cum_quote_u += quote
            o.update_time = now
            o.status = "FILLED" if o.leaves <= 0 else "PARTIALLY_FILLED"
            o.account.trades_count += 1
            self._trades.setdefault((o.account, o.symbol), []).append(
                {"symbol": o.symbol, "id": tid, "orderId": o.order_id, "orderListId": -1,
                 "price": spec.fmt_price(p), "qty": spec.fmt_qty(x), "quoteQty": spec.fmt_quote(quote),
                 "commission": fmt(comm), "commissionAsset": asset, "time": now, "isBuyer": o.is_buy,
                 "isMaker": is_maker, "isBestMatch": True}
            )
            if o.leaves <= 0:
                self._close(o)
            else:
                self._release_excess(o)
            self._report(o, "TRADE", last_qty=x, last_price=p, commission=comm, comm_asset=asset, trade_id=tid,
                         is_maker=is_maker, last_quote=quote, w=o.resting and o.leaves > 0)
            if o is maker and log.isEnabledFor(logging.DEBUG):  # calibration hook (MATCHING.md)
                log.debug("maker fill %s #%d rule=%s qty=%d a_at_accept=%.0f a_now=%.0f age_ms=%d",
                          o.symbol, o.order_id, ex.rule, x, o.a_at_accept, o.a, now - o.time)
            if o is taker:
                taker_fill = {"price": spec.fmt_price(p), "qty": spec.fmt_qty(x), "commission": fmt(comm),
                              "commissionAsset": asset, "tradeId": tid}
        if taker is not None and self.config.own_trade_prints:
            fp, fq = spec.fmt_price, spec.fmt_qty
            self._stats[spec.symbol].add(tid, p, x, quote, self._mkt_ns // 1_000_000)
            if self._listeners:
                self._prints.append(
                    (spec.symbol, {"e": "trade", "E": now, "s": spec.symbol, "t": tid, "p": fp(p), "q": fq(x),
                                   "T": now, "m": not taker.is_buy, "M": True})
                )
        return taker_fill

    def _settle_stp(self, book: Book, ex: Exec) -> dict[str, Any]:
        spec = book.spec
        maker, taker = ex.maker, ex.taker
        assert maker is not None and taker is not None
        pm_id = self._next_pm_id[spec.symbol]
        self._next_pm_id[spec.symbol] = pm_id + 1
        taker.prevented_u += ex.taker_prev
        entry: dict[str, Any] = {"preventedMatchId": pm_id, "makerOrderId": maker.order_id,
                                 "price": spec.fmt_price(ex.price_u)}
        if ex.taker_prev:
            entry["takerPreventedQuantity"] = spec.fmt_qty(ex.taker_prev)
        if ex.maker_prev:
            entry["makerPreventedQuantity"] = spec.fmt_qty(ex.maker_prev)
        now = self.now_ms()
        for o, last_prev, counter in ((maker, ex.maker_prev, taker), (taker, ex.taker_prev, maker)):
            if not last_prev:
                continue
            o.prevented_match_id = pm_id
            o.update_time = now
            if o.leaves <= 0:
                o.status = "EXPIRED_IN_MATCH"
                self._close(o)
            else:
                self._release_excess(o)
            self._report(o, "TRADE_PREVENTION", extra={"v": pm_id, "A": spec.fmt_qty(o.prevented_u),
                                                      "B": spec.fmt_qty(last_prev), "U": counter.order_id})
        return entry

    def _release_excess(self, o: Order) -> None:
        """Keep exactly what the open remainder needs locked; release the rest (never below zero)."""
        spec = self.specs[o.symbol]
        if not o.is_open:
            need = 0
        elif o.is_buy:
            if o.type == "MARKET":
                return  # released when the taker finishes
            need = spec.quote_ceil(o.price_u, o.leaves)
        else:
            need = o.leaves
        excess = o.locked_u - need
        if excess > 0:
            self.ledger.unlock(o.account, o.lock_asset, excess)
            o.locked_u = need

    def _close(self, o: Order) -> None:
        """A terminal order: leave the book and the open index, release whatever it still has locked."""
        if o.resting:
            self.books[o.symbol].remove_resting(o)
        self._open[o.account].pop((o.symbol, o.order_id), None)
        if o.locked_u:
            self.ledger.unlock(o.account, o.lock_asset, o.locked_u)
            o.locked_u = 0

    def _expire(self, o: Order, status: str, reason: str) -> None:
        o.status = status
        o.expiry_reason = reason
        o.update_time = self.now_ms()
        self._close(o)
        self._report(o, "EXPIRED", extra={"eR": reason})

    # ------------------------------------------------------------------------------------------
    # executionReport
    # ------------------------------------------------------------------------------------------
    def _report(self, o: Order, x: str, *, last_qty: int = 0, last_price: int = 0, commission: int | None = None,
                comm_asset: str | None = None, trade_id: int = -1, is_maker: bool = False, last_quote: int = 0,
                w: bool = False, cancel_id: str | None = None, extra: dict[str, Any] | None = None) -> None:
        spec = self.specs[o.symbol]
        now = self.now_ms()
        exec_id = self._exec_id
        self._exec_id += 1
        ev: dict[str, Any] = {
            "e": "executionReport", "E": now, "s": o.symbol, "c": cancel_id if cancel_id else o.client_id,
            "S": o.side, "o": o.type, "f": o.tif, "q": spec.fmt_qty(o.qty_u), "p": spec.fmt_price(o.price_u),
            "P": fmt(0, spec.pd), "F": fmt(0, spec.qd), "g": -1, "C": o.client_id if cancel_id else "",
            "x": x, "X": o.status, "r": "NONE", "i": o.order_id, "l": spec.fmt_qty(last_qty),
            "z": spec.fmt_qty(o.executed_u), "L": spec.fmt_price(last_price),
            "n": fmt(commission) if commission is not None else "0", "N": comm_asset, "T": now, "t": trade_id,
            "I": exec_id, "w": w, "m": is_maker, "M": x == "TRADE", "O": o.time, "Z": spec.fmt_quote(o.cum_quote_u),
            "Y": spec.fmt_quote(last_quote), "Q": spec.fmt_quote(o.quote_qty_u), "W": o.working_time, "V": o.stp,
        }
        if o.strategy_id is not None:
            ev["j"] = o.strategy_id
        if o.strategy_type is not None:
            ev["J"] = o.strategy_type
        if extra:
            ev.update(extra)
        self._out.append((o.account, ev))

    # ------------------------------------------------------------------------------------------
    # cancels and queries
    # ------------------------------------------------------------------------------------------
    def _lookup(self, account: Account, params: dict[str, str], id_key: str = "orderId",
                cid_key: str = "origClientOrderId") -> tuple[SymbolSpec, Order | None]:
        if not params.get("symbol"):
            raise E.mandatory("symbol")
        oid_s = params.get(id_key) or ""
        cid = params.get(cid_key) or ""
        if not oid_s and not cid:
            raise E.either(cid_key, id_key)
        if oid_s and not INTEGER_RE.match(oid_s):
            raise E.illegal_chars(id_key, E.INTEGER_RANGE)
        spec = self._spec(params["symbol"])
        o: Order | None
        if oid_s:
            o = self._orders[spec.symbol].get(int(oid_s))
            if o is not None and (o.account is not account or (cid and o.client_id != cid)):
                o = None
        else:
            o = self._by_cid.get((account, spec.symbol, cid))
        return spec, o

    def cancel_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        spec, o = self._lookup(account, params)
        restriction = self._restriction(params)
        cancel_id = self._cancel_id(params.get("newClientOrderId"))
        return self._act(lambda: self._cancel(account, spec, o, cancel_id, restriction))

    def _restriction(self, params: dict[str, str]) -> str | None:
        r = params.get("cancelRestrictions") or None
        if r is not None and r not in ("ONLY_NEW", "ONLY_PARTIALLY_FILLED"):
            raise E.BinanceError(-1145, "cancelRestrictions has to be either ONLY_NEW or ONLY_PARTIALLY_FILLED.")
        return r

    def _cancel_id(self, given: str | None) -> str:
        if given:
            if not CLIENT_ID_RE.match(given):
                raise E.illegal_chars("newClientOrderId", E.CLIENT_ID_RANGE)
            return given
        return self._gen_client_id()

    def _cancel(self, account: Account, spec: SymbolSpec, o: Order | None, cancel_id: str,
                restriction: str | None) -> dict[str, Any]:
        if o is None or not o.is_open:
            raise E.cancel_rejected(E.UNKNOWN_ORDER)
        if restriction == "ONLY_NEW" and o.status != "NEW" or (
            restriction == "ONLY_PARTIALLY_FILLED" and o.status != "PARTIALLY_FILLED"
        ):
            raise E.cancel_rejected(E.CANCEL_RESTRICTED)
        now = self.now_ms()
        o.status = "CANCELED"
        o.update_time = now
        self._close(o)
        self._touched[o.symbol] = None
        self._report(o, "CANCELED", cancel_id=cancel_id)
        return {
            "symbol": o.symbol, "origClientOrderId": o.client_id, "orderId": o.order_id, "orderListId": -1,
            "clientOrderId": cancel_id, "transactTime": now, "price": spec.fmt_price(o.price_u),
            "origQty": spec.fmt_qty(o.qty_u), "executedQty": spec.fmt_qty(o.executed_u),
            "origQuoteOrderQty": spec.fmt_quote(o.quote_qty_u), "cummulativeQuoteQty": spec.fmt_quote(o.cum_quote_u),
            "status": o.status, "timeInForce": o.tif, "type": o.type, "side": o.side,
            "selfTradePreventionMode": o.stp,
        }

    def cancel_open_orders(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        spec = self._spec(params.get("symbol"))
        orders = [o for (sym, _), o in self._open[account].items() if sym == spec.symbol]
        if not orders:
            raise E.cancel_rejected(E.UNKNOWN_ORDER)
        return self._act(lambda: [self._cancel(account, spec, o, self._gen_client_id(), None) for o in orders])

    def cancel_replace(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        """Cancel then place (A9: the new order starts a new queue entry); -2021 (409) / -2022 (400)."""
        for name in ("symbol", "side", "type", "cancelReplaceMode"):
            if not params.get(name):
                raise E.mandatory(name)
        mode = params["cancelReplaceMode"]
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise E.BinanceError(-1100, "Illegal characters found in parameter 'cancelReplaceMode'; legal range is "
                                        "'STOP_ON_FAILURE, ALLOW_FAILURE'.")
        spec, old = self._lookup(account, params, "cancelOrderId", "cancelOrigClientOrderId")
        if not spec.cancel_replace_allowed:
            raise E.rejected("Order cancel-replace is not supported for this symbol.")
        restriction = self._restriction(params)
        cancel_id = self._cancel_id(params.get("cancelNewClientOrderId"))
        new_params = {k: v for k, v in params.items()
                      if k not in ("cancelReplaceMode", "cancelOrderId", "cancelOrigClientOrderId",
                                   "cancelNewClientOrderId", "cancelRestrictions", "orderRateLimitExceededMode")}
        # Filters are evaluated before either action: parameter/filter errors are plain errors.
        # The open-order count excludes the order being replaced.
        req = self._parse_replacing(account, new_params, old)

        def run() -> dict[str, Any]:
            cancel_resp: dict[str, Any] | None = None
            cancel_err: E.BinanceError | None = None
            try:
                cancel_resp = self._cancel(account, spec, old, cancel_id, restriction)
            except E.BinanceError as exc:
                cancel_err = exc
            if cancel_err is not None and mode == "STOP_ON_FAILURE":
                raise E.BinanceError(-2022, E.CANCEL_REPLACE_FAILED, 400, {
                    "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                    "cancelResponse": cancel_err.short(), "newOrderResponse": None})
            new_resp: dict[str, Any] | None = None
            new_err: E.BinanceError | None = None
            try:
                new_resp = self._new_order(account, req)
            except E.BinanceError as exc:
                new_err = exc
                self._report_rejected(account, req, exc)
            if cancel_err is None and new_err is None:
                return {"cancelResult": "SUCCESS", "newOrderResult": "SUCCESS",
                        "cancelResponse": cancel_resp, "newOrderResponse": new_resp}
            data = {
                "cancelResult": "FAILURE" if cancel_err else "SUCCESS",
                "newOrderResult": "FAILURE" if new_err else "SUCCESS",
                "cancelResponse": cancel_err.short() if cancel_err else cancel_resp,
                "newOrderResponse": new_err.short() if new_err else new_resp,
            }
            if cancel_err is not None and new_err is not None:
                raise E.BinanceError(-2022, E.CANCEL_REPLACE_FAILED, 400, data)
            raise E.BinanceError(-2021, E.CANCEL_REPLACE_PARTIAL, 409, data)

        return self._act(run)

    def _parse_replacing(self, account: Account, params: dict[str, str], old: Order | None) -> NewOrderParams:
        replacing = old is not None and old.is_open
        return parse_new_order(
            params,
            self.specs,
            open_on_symbol=lambda s: sum(1 for (sym, _), o in self._open[account].items() if sym == s)
            - (1 if replacing and old is not None and old.symbol == s else 0),
            open_total=lambda: len(self._open[account]) - (1 if replacing else 0),
            avg_price_u=self._avg_u,
            exchange_filters=self._xinfo.get("exchangeFilters") or [],
        )

    def _report_rejected(self, account: Account, req: NewOrderParams, exc: E.BinanceError) -> None:
        """cancelReplace's rejected new leg gets an ``x=REJECTED`` report (no order is created)."""
        spec = req.spec
        now = self.now_ms()
        reason = {E.INSUFFICIENT_BALANCE: "INSUFFICIENT_BALANCES", E.WOULD_MATCH: "WOULD_MATCH_IMMEDIATELY"}.get(
            exc.msg, "NONE")
        cid = req.client_id or ""
        ev = {
            "e": "executionReport", "E": now, "s": spec.symbol, "c": cid, "S": req.side, "o": req.type,
            "f": req.tif, "q": spec.fmt_qty(req.qty_u), "p": spec.fmt_price(req.price_u), "P": fmt(0, spec.pd),
            "F": fmt(0, spec.qd), "g": -1, "C": "", "x": "REJECTED", "X": "REJECTED", "r": reason, "i": -1,
            "l": fmt(0, spec.qd), "z": fmt(0, spec.qd), "L": fmt(0, spec.pd), "n": "0", "N": None, "T": now,
            "t": -1, "I": self._exec_id, "w": False, "m": False, "M": False, "O": now,
            "Z": fmt(0, spec.quote_dp), "Y": fmt(0, spec.quote_dp), "Q": spec.fmt_quote(req.quote_qty_u),
            "V": req.stp,
        }
        self._exec_id += 1
        self._out.append((account, ev))

    def query_order(self, account: Account, params: dict[str, str]) -> dict[str, Any]:
        spec, o = self._lookup(account, params)
        if o is None:
            raise E.no_such_order()
        return self._order_json(spec, o)

    def _order_json(self, spec: SymbolSpec, o: Order) -> dict[str, Any]:
        out = {
            "symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_id,
            "price": spec.fmt_price(o.price_u), "origQty": spec.fmt_qty(o.qty_u),
            "executedQty": spec.fmt_qty(o.executed_u), "cummulativeQuoteQty": spec.fmt_quote(o.cum_quote_u),
            "status": o.status, "timeInForce": o.tif, "type": o.type, "side": o.side,
            "stopPrice": fmt(0, spec.pd), "icebergQty": fmt(0, spec.qd), "time": o.time,
            "updateTime": o.update_time, "isWorking": True, "workingTime": o.working_time,
            "origQuoteOrderQty": spec.fmt_quote(o.quote_qty_u), "selfTradePreventionMode": o.stp,
        }
        self._conditional_fields(o, out)
        return out

    def open_orders(self, account: Account, symbol: str | None = None) -> list[dict[str, Any]]:
        if symbol is not None:
            self._spec(symbol)
        return [self._order_json(self.specs[o.symbol], o) for (sym, _), o in self._open[account].items()
                if symbol is None or sym == symbol]

    def account_info(self, account: Account, omit_zero: bool = False) -> dict[str, Any]:
        bps_m = self._maker_num // 10_000
        bps_t = self._taker_num // 10_000
        balances = []
        for asset in account.assets():
            free, locked = account.free.get(asset, 0), account.locked.get(asset, 0)
            if omit_zero and not free and not locked:
                continue
            balances.append({"asset": asset, "free": fmt(free), "locked": fmt(locked)})
        return {
            "makerCommission": bps_m, "takerCommission": bps_t, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": fmt(self._maker_num), "taker": fmt(self._taker_num),
                                "buyer": fmt(0), "seller": fmt(0)},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": account.update_time,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": account.uid,
        }

    def my_trades(self, account: Account, params: dict[str, str]) -> list[dict[str, Any]]:
        spec = self._spec(params.get("symbol"))
        for name in ("orderId", "fromId", "startTime", "endTime", "limit"):
            v = params.get(name)
            if v and not INTEGER_RE.match(v):
                raise E.illegal_chars(name, E.INTEGER_RANGE)
        limit = int(params.get("limit") or 500)
        if not 1 <= limit <= 1000:
            raise E.BinanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '1-1000'.")
        trades = self._trades.get((account, spec.symbol), [])
        start = int(params["startTime"]) if params.get("startTime") else None
        end = int(params["endTime"]) if params.get("endTime") else None
        from_id = int(params["fromId"]) if params.get("fromId") else None
        if from_id is not None and (start is not None or end is not None):
            raise E.BinanceError(-1128, "Combination of optional parameters invalid.")
        if start is not None and end is not None and end - start > 86_400_000:
            raise E.BinanceError(-1127, "More than 24 hours between startTime and endTime.")
        sel = trades
        if params.get("orderId"):
            oid = int(params["orderId"])
            sel = [t for t in sel if t["orderId"] == oid]
        if from_id is not None:
            return [t for t in sel if t["id"] >= from_id][:limit]
        if start is not None or end is not None:
            sel = [t for t in sel if (start is None or t["time"] >= start) and (end is None or t["time"] <= end)]
            return sel[:limit] if start is not None else sel[-limit:]
        return sel[-limit:]

    # ------------------------------------------------------------------------------------------
    # introspection (tests, calibration logs)
    # ------------------------------------------------------------------------------------------
    def order(self, symbol: str, order_id: int) -> Order | None:
        return self._orders.get(symbol, {}).get(order_id)

    def open_order_objects(self, account: Account | None = None) -> list[Order]:
        accts = [account] if account is not None else list(self._open)
        return [o for a in accts for o in self._open.get(a, {}).values()]
