"""Market sources: replay of recorded captures, or a seeded synthetic random walk.

Both yield ``MarketEvent(ns, kind, symbol, data)`` in the order the venue must process them:
``ns`` is the pacing clock (the recorder's local receive time for a replay), ``data`` is the
decoded Binance payload (``depthUpdate``, ``bookTicker``, ``trade``) or a REST snapshot. The venue
turns them into book updates and fills; recorded times only order and pace, they are never served.

Replay details:
- several files and symbols are merged by local time (each file is a sorted capture; the 0809 file
  simply continues 0808);
- a bare REST snapshot line belongs to the symbol of the file's streams (the nearest depth stream);
- *trades before depth at equal exchange time* (MATCHING.md section 1): spot ``@depth@100ms`` is
  conflated, and in the shipped BTCUSDT capture 12% of trade prints arrive up to 183 ms after a
  diff whose window (``E``) already contains them. A diff therefore pulls forward the prints of its
  symbol that arrive within ``late_trade_window_ms`` and have ``T <= E``, so the queue model never
  counts one decrease twice (once as a cancellation, once as a trade).
"""

from __future__ import annotations

import heapq
import itertools
import random
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import msgspec

from botcore.replay import iter_recording, stream_name
from botcore_exchange_paper.filters import SymbolSpec

DEPTH, TICKER, TRADE, SNAPSHOT = 0, 1, 2, 3
KIND_NAMES = ("depth", "bookTicker", "trade", "snapshot")
_DEPTH_STREAMS = ("depth", "depth@100ms", "depth@1000ms")


class MarketEvent(NamedTuple):
    ns: int
    kind: int
    symbol: str
    data: Any


class MarketSource:
    """Interface of a market source (replay or synthetic)."""

    def next(self) -> MarketEvent | None:  # pragma: no cover - interface
        raise NotImplementedError

    def peek(self) -> MarketEvent | None:  # pragma: no cover - interface
        raise NotImplementedError

    def restart(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


_SKIP = (-1, "")


def _classify(name: str) -> tuple[int, str]:
    """``btcusdt@depth@100ms`` -> (DEPTH, "BTCUSDT"); streams the venue does not replay -> _SKIP."""
    at = name.find("@")
    if at <= 0:
        return _SKIP
    rest = name[at + 1 :]
    if rest in _DEPTH_STREAMS:
        return DEPTH, name[:at].upper()
    if rest == "bookTicker":
        return TICKER, name[:at].upper()
    if rest == "trade":
        return TRADE, name[:at].upper()
    return _SKIP


def read_capture(path: Path, chunk: int = 1 << 20) -> Iterator[tuple[int, bytes]]:
    """``(local_ns, raw_json)`` per record, exactly like ``botcore.replay.iter_recording`` for one file.

    Same format and errors; it decompresses in 1 MiB chunks and splits lines in bulk instead of
    reading line by line through ``GzipFile`` (about 2x cheaper, which matters at 100k events/s).
    tests/paper/test_market.py checks both readers agree on the shipped captures.
    """
    p = Path(path)
    if p.suffix != ".gz":
        yield from iter_recording([p])
        return
    dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
    tail = b""
    lineno = 0
    with open(p, "rb") as fh:
        while True:
            comp = fh.read(chunk)
            data = dec.decompress(comp) if comp else dec.flush()
            while dec.eof and dec.unused_data:  # a multi-member gzip file continues in the next member
                rest = dec.unused_data
                dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data += dec.decompress(rest)
            lines = (tail + data).split(b"\n")
            tail = lines.pop() if comp else b""  # at EOF the last piece is the final line
            for line in lines:
                lineno += 1
                line = line.rstrip(b"\r")
                if not line:
                    continue
                sep = line.find(b" ")
                if sep <= 0 or not line[:sep].isdigit():
                    raise ValueError(f"{p}:{lineno}: expected '<local_ns> <json>'")
                yield int(line[:sep]), line[sep + 1 :]
            if not comp:
                return


def _file_events(path: Path, symbols: frozenset[str] | None) -> Iterator[MarketEvent]:
    """Events of one capture file; snapshots are attributed to the file's depth stream symbol."""
    decode = msgspec.json.Decoder().decode
    streams: dict[bytes, Any] = {}
    early: list[tuple[int, bytes]] = []
    last_u: dict[str, int] = {}
    # with one wanted symbol, a snapshot can only be that symbol's
    current: str | None = next(iter(symbols)) if symbols is not None and len(symbols) == 1 else None
    for ns, raw in read_capture(path):
        if raw.startswith(b'{"lastUpdateId"'):
            if current is None:
                early.append((ns, raw))
                continue
            snap = decode(raw)
            sym = current
            if len(last_u) > 1:  # a file with several symbols: the one whose ids are closest
                lid = int(snap["lastUpdateId"])
                sym = min(last_u, key=lambda s: abs(last_u[s] - lid))
            if symbols is None or sym in symbols:
                yield MarketEvent(ns, SNAPSHOT, sym, snap)
            continue
        if not raw.startswith(b'{"stream":"'):
            continue
        end = raw.find(b'"', 11)
        key = raw[11:end]
        hit = streams.get(key)
        if hit is None:
            hit = streams[key] = _classify(key.decode())
        if hit is _SKIP:
            continue
        kind, sym = hit
        if current is None or kind == DEPTH:
            current = sym
        if early:
            for ens, eraw in early:
                if symbols is None or sym in symbols:
                    yield MarketEvent(ens, SNAPSHOT, sym, decode(eraw))
            early = []
        if symbols is not None and sym not in symbols:
            continue
        data = decode(raw)["data"]
        if kind == DEPTH:
            last_u[sym] = data["u"]
        yield MarketEvent(ns, kind, sym, data)


def symbols_in(paths: Iterable[str | Path], max_lines: int = 2000) -> list[str]:
    """Symbols whose streams appear in the first lines of each file (cheap: no full read)."""
    found: dict[str, None] = {}
    for path in paths:
        for i, (_ns, raw) in enumerate(iter_recording([path])):
            if i >= max_lines:
                break
            name = stream_name(raw)
            if "@" in name:
                found[name[: name.find("@")].upper()] = None
    return list(found)


def _first_line(path: Path) -> tuple[int, str]:
    """(local ns of the first record, the single symbol of the file's streams or '' if several/none)."""
    first_ns = -1
    syms: set[str] = set()
    for i, (ns, raw) in enumerate(iter_recording([path])):
        if first_ns < 0:
            first_ns = ns
        name = stream_name(raw)
        if "@" in name:
            syms.add(name[: name.find("@")].upper())
        if i >= 200:
            break
    return first_ns, (next(iter(syms)) if len(syms) == 1 else "")


def _group_files(paths: list[Path]) -> list[list[Path]]:
    """Files of one symbol are consecutive captures: chain them (cheaper than a k-way merge)."""
    groups: dict[str, list[tuple[int, Path]]] = {}
    solo: list[list[Path]] = []
    for p in paths:
        first_ns, sym = _first_line(p)
        if sym:
            groups.setdefault(sym, []).append((first_ns, p))
        else:
            solo.append([p])
    return [[p for _, p in sorted(g, key=lambda t: t[0])] for g in groups.values()] + solo


class ReplaySource(MarketSource):
    """Recorded captures merged by local time, with late trade prints pulled before their diff."""

    def __init__(
        self,
        paths: Iterable[str | Path],
        symbols: Iterable[str] | None = None,
        late_trade_window_ms: float = 250.0,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise ValueError("no recordings given")
        for p in self.paths:
            if not p.is_file():
                raise ValueError(f"recording not found: {p}")
        self.symbols = frozenset(s.upper() for s in symbols) if symbols is not None else None
        self.window_ns = int(late_trade_window_ms * 1_000_000)
        self.pulled_forward = 0
        self._groups = _group_files(self.paths)
        self.restart()

    def restart(self) -> None:
        gens = [itertools.chain.from_iterable(_file_events(p, self.symbols) for p in group) for group in self._groups]
        self._it: Iterator[MarketEvent] = (
            gens[0] if len(gens) == 1 else heapq.merge(*gens, key=lambda e: e.ns)
        )
        self._ahead: deque[MarketEvent] = deque()
        self._ready: deque[MarketEvent] = deque()
        self._exhausted = False

    def _pull(self) -> MarketEvent | None:
        if self._ahead:
            return self._ahead.popleft()
        if self._exhausted:
            return None
        ev = next(self._it, None)
        if ev is None:
            self._exhausted = True
        return ev

    def next(self) -> MarketEvent | None:
        if self._ready:
            return self._ready.popleft()
        ev = self._pull()
        if ev is None or ev.kind != DEPTH or not self.window_ns:
            return ev
        ahead = self._ahead
        limit = ev.ns + self.window_ns
        while not self._exhausted and (not ahead or ahead[-1].ns <= limit):
            nxt = next(self._it, None)
            if nxt is None:
                self._exhausted = True
                break
            ahead.append(nxt)
        sym = ev.symbol
        close = ev.data["E"]
        late = [x for x in ahead if x.kind == TRADE and x.symbol == sym and x.ns <= limit and x.data["T"] <= close]
        if not late:
            return ev
        self.pulled_forward += len(late)
        ids = {id(x) for x in late}
        self._ahead = deque(x for x in ahead if id(x) not in ids)
        out = [x._replace(ns=ev.ns) for x in late]
        self._ready.extend(out[1:])
        self._ready.append(ev)
        return out[0]

    def peek(self) -> MarketEvent | None:
        ev = self.next()
        if ev is not None:
            self._ready.appendleft(ev)
        return ev


DEFAULT_START_PRICES = {"BTCUSDT": Decimal("60000"), "ETHUSDT": Decimal("3000"), "ETHBTC": Decimal("0.05")}


class _SynthSymbol:
    """State of one synthetic symbol: a small book around a random-walking best bid."""

    def __init__(self, spec: SymbolSpec, seed: int, start: Decimal | None) -> None:
        self.spec = spec
        self.rng = random.Random(seed * 1_000_003 + zlib.crc32(spec.symbol.encode()))
        tick = spec.tick_u or 1
        if start is None:
            start = DEFAULT_START_PRICES.get(spec.symbol)
        mid_u = int(start * spec.price_scale) if start is not None else 10000 * tick
        mid_u = max(mid_u - mid_u % tick, spec.min_price_u + 50 * tick, 50 * tick)
        self.tick = tick
        self.best_bid = mid_u
        self.spread = 1
        # a lot unit worth about 10 quote units, on the step grid
        step = spec.step_u or 1
        unit = max(1, (10 * 10**spec.quote_dp * spec.quote_div) // max(mid_u * step, 1))
        self.unit = unit * step
        self.levels = 20
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.u = 1_000_000
        self.trade_id = 1
        self._fill_book()

    def _qty(self) -> int:
        return self.unit * self.rng.randint(1, 40)

    def _fill_book(self) -> dict[tuple[bool, int], int]:
        """Recentre on the best prices and top up to ``levels`` per side; returns changed levels."""
        changed: dict[tuple[bool, int], int] = {}
        bb = self.best_bid
        ba = bb + self.spread * self.tick
        for p in [p for p in self.bids if p > bb or p < bb - 3 * self.levels * self.tick]:
            del self.bids[p]
            changed[(True, p)] = 0
        for p in [p for p in self.asks if p < ba or p > ba + 3 * self.levels * self.tick]:
            del self.asks[p]
            changed[(False, p)] = 0
        for i in range(self.levels):
            p = bb - i * self.tick
            if p > 0 and p not in self.bids and (i == 0 or self.rng.random() < 0.8):
                self.bids[p] = changed[(True, p)] = self._qty()
            p = ba + i * self.tick
            if p not in self.asks and (i == 0 or self.rng.random() < 0.8):
                self.asks[p] = changed[(False, p)] = self._qty()
        return changed

    def snapshot(self) -> dict[str, Any]:
        fp, fq = self.spec.fmt_price, self.spec.fmt_qty
        return {
            "lastUpdateId": self.u,
            "bids": [[fp(p), fq(q)] for p, q in sorted(self.bids.items(), reverse=True)],
            "asks": [[fp(p), fq(q)] for p, q in sorted(self.asks.items())],
        }

    def step(self, ns: int, ms: int) -> list[MarketEvent]:
        """One 100 ms window: some prints at the touch, a conflated diff, then a bookTicker."""
        rng, spec, sym = self.rng, self.spec, self.spec.symbol
        fp, fq = spec.fmt_price, spec.fmt_qty
        out: list[MarketEvent] = []
        changed: dict[tuple[bool, int], int] = {}
        for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
            sell = rng.random() < 0.5
            book = self.bids if sell else self.asks
            if not book:
                continue
            p = max(book) if sell else min(book)
            q = min(book[p], self.unit * rng.randint(1, 10))
            book[p] -= q
            if not book[p]:
                del book[p]
            changed[(sell, p)] = book.get(p, 0)
            out.append(
                MarketEvent(
                    ns,
                    TRADE,
                    sym,
                    {"e": "trade", "E": ms, "s": sym, "t": self.trade_id, "p": fp(p), "q": fq(q), "T": ms - 1,
                     "m": sell, "M": True},
                )
            )
            self.trade_id += 1
        r = rng.random()
        if r < 0.15:
            self.best_bid -= self.tick
        elif r < 0.30:
            self.best_bid += self.tick
        if self.best_bid <= self.tick:
            self.best_bid = 2 * self.tick
        self.spread = 1 if rng.random() < 0.8 else 2
        for _ in range(3):  # churn: random size changes near the touch
            side = rng.random() < 0.5
            book = self.bids if side else self.asks
            if book:
                p = rng.choice(sorted(book)[-5:] if side else sorted(book)[:5])
                book[p] = changed[(side, p)] = self._qty()
        changed.update(self._fill_book())
        # a trade may have emptied the best level: keep the walk's best consistent with the book
        if self.bids:
            self.best_bid = max(self.bids)
        if changed:
            n = len(changed)
            data = {
                "e": "depthUpdate",
                "E": ms,
                "s": sym,
                "U": self.u + 1,
                "u": self.u + n,
                "b": [[fp(p), fq(q)] for (is_bid, p), q in changed.items() if is_bid],
                "a": [[fp(p), fq(q)] for (is_bid, p), q in changed.items() if not is_bid],
            }
            self.u += n
            out.append(MarketEvent(ns, DEPTH, sym, data))
        if self.bids and self.asks:
            self.u += 1
            bp, ap = max(self.bids), min(self.asks)
            out.append(
                MarketEvent(
                    ns,
                    TICKER,
                    sym,
                    {"u": self.u, "s": sym, "b": fp(bp), "B": fq(self.bids[bp]), "a": fp(ap), "A": fq(self.asks[ap])},
                )
            )
        return out


class SyntheticSource(MarketSource):
    """A seeded random-walk market for any exchangeInfo symbols; same seed -> identical sequence."""

    def __init__(
        self,
        specs: Mapping[str, SymbolSpec],
        seed: int = 1,
        start_prices: Mapping[str, Decimal] | None = None,
        step_ms: int = 100,
    ) -> None:
        self.specs = dict(specs)
        self.seed = seed
        self.start_prices = dict(start_prices or {})
        self.step_ns = step_ms * 1_000_000
        self.restart()

    def restart(self) -> None:
        self._syms = [
            _SynthSymbol(self.specs[s], self.seed, self.start_prices.get(s)) for s in sorted(self.specs)
        ]
        self._queue: deque[MarketEvent] = deque(
            MarketEvent(0, SNAPSHOT, s.spec.symbol, s.snapshot()) for s in self._syms
        )
        self._t = 0
        self._base_ms = 1_700_000_000_000

    def next(self) -> MarketEvent | None:
        while not self._queue:
            self._t += 1
            ns = self._t * self.step_ns
            ms = self._base_ms + ns // 1_000_000
            for s in self._syms:
                self._queue.extend(s.step(ns, ms))
        return self._queue.popleft()

    def peek(self) -> MarketEvent | None:
        ev = self.next()
        if ev is not None:
            self._queue.appendleft(ev)
        return ev
