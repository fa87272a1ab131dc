"""Fault injection: the failures a Binance bot meets in production, on demand.

A fault is a spec ``{"kind": ..., <params>, "at_s": delay, "every_s": period}`` (``at_s``/``every_s``
optional: without them it applies now, once). Specs come from the ``faults:`` block of the paper
config (a list of specs, or a mapping ``kind -> params``), from ``POST /paper/faults`` (one spec or a
list) and from ``EmbeddedPaper.faults`` in tests. Kinds and their parameters (defaults shown):

======================== ===================================================== ===========================
kind                     effect                                                params
======================== ===================================================== ===========================
drop                     close websocket connections now                       target: market|user|all
depth_gap                skip the next depth diff of a symbol (client sees     symbol: null (= all)
                         ``U > last u + 1``)
stall                    keep sockets open but send nothing (messages are      target: market, seconds: 5
                         discarded, as in a silent stall)
rate_limit_storm         every REST request answers 429 -1003; clients that    seconds: 10
                         keep going are banned with 418
clock_skew               server time offset (``/time``, ``timestamp`` checks)  ms: 0
order_5xx                the order IS placed, the answer is HTTP 503 -1007     count: 1, status: 503
                         (unknown execution status)
ack_delay                the order is placed, the answer comes ``ms`` later    ms: 1000, count: 1
ack_lost                 the order is placed, the connection is dropped        count: 1
                         without an answer
user_stream_terminated   end user-data subscriptions with                      api_key: null (= all)
                         ``eventStreamTerminated`` (legacy: listenKeyExpired)
duplicate_user_events    the next ``count`` user events are sent twice         count: 1
lost_user_events         the next ``count`` user events are not sent           count: 1
clear                    remove every active fault and lift bans
======================== ===================================================== ===========================

``order_5xx``/``ack_delay``/``ack_lost`` also take ``api_key`` (only that account) and ``actions``
(subset of ``place``, ``replace``, ``cancel``; default ``[place, replace]``); ``duplicate_`` and
``lost_user_events`` take ``api_key``. The same order faults apply to REST and WebSocket API orders.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

_ORDER_ACTIONS = ("place", "replace", "cancel")

KINDS: dict[str, dict[str, Any]] = {
    "drop": {"target": "all"},
    "depth_gap": {"symbol": None},
    "stall": {"target": "market", "seconds": 5.0},
    "rate_limit_storm": {"seconds": 10.0},
    "clock_skew": {"ms": 0},
    "order_5xx": {"count": 1, "status": 503, "api_key": None, "actions": ["place", "replace"]},
    "ack_delay": {"ms": 1000, "count": 1, "api_key": None, "actions": ["place", "replace"]},
    "ack_lost": {"count": 1, "api_key": None, "actions": ["place", "replace"]},
    "user_stream_terminated": {"api_key": None},
    "duplicate_user_events": {"count": 1, "api_key": None},
    "lost_user_events": {"count": 1, "api_key": None},
    "clear": {},
}
_SCHEDULE_KEYS = ("at_s", "every_s")
_TARGETS = ("market", "user", "all")

UNKNOWN_STATUS_MSG = (
    "Timeout waiting for response from backend server. Send status unknown; execution status unknown."
)


class FaultTargets(Protocol):
    """What the server lets the fault controller act on (immediate faults)."""

    def drop_connections(self, target: str) -> int: ...

    def terminate_user_streams(self, api_key: str | None) -> int: ...

    def rate_limit_storm(self, seconds: float) -> None: ...

    def clear_rate_limits(self) -> None: ...

    def symbols(self) -> list[str]: ...


def normalize(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one spec and fill defaults; ValueError names the bad kind or key."""
    if not isinstance(spec, Mapping):
        raise ValueError(f"fault spec must be a mapping, got {type(spec).__name__}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(KINDS)}")
    allowed = KINDS[kind]
    for key in spec:
        if key != "kind" and key not in allowed and key not in _SCHEDULE_KEYS:
            raise ValueError(
                f"fault {kind!r}: unknown key {key!r}; allowed {sorted([*allowed, *_SCHEDULE_KEYS])}"
            )
    out: dict[str, Any] = {"kind": kind}
    for key, default in allowed.items():
        out[key] = spec.get(key, default)
    if "target" in out and out["target"] not in _TARGETS:
        raise ValueError(f"fault {kind!r}: target must be one of {_TARGETS}")
    if "actions" in out:
        acts = out["actions"]
        if isinstance(acts, str):
            acts = [acts]
        if not acts or any(a not in _ORDER_ACTIONS for a in acts):
            raise ValueError(f"fault {kind!r}: actions must be a non-empty subset of {_ORDER_ACTIONS}")
        out["actions"] = list(acts)
    for key in ("count", "status", "ms"):
        if key in out:
            out[key] = int(out[key])
    for key in ("seconds",):
        if key in out:
            out[key] = float(out[key])
    if isinstance(out.get("symbol"), str):
        out["symbol"] = out["symbol"].upper()
    for key in _SCHEDULE_KEYS:
        if spec.get(key) is not None:
            out[key] = float(spec[key])
    return out


def parse_specs(source: Any) -> list[dict[str, Any]]:
    """Specs from config/CLI: None, a list of specs, a mapping ``kind -> params``, a spec, JSON text or a path."""
    if source is None or source == "" or source == []:
        return []
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(("{", "["))):
        source = json.loads(Path(source).read_text())
    elif isinstance(source, str):
        source = json.loads(source)
    if isinstance(source, Mapping):
        if "kind" in source:
            return [normalize(source)]
        specs = []
        for kind, params in source.items():
            if params is False or params is None:
                continue
            if params is True:
                params = {}
            if not isinstance(params, Mapping):
                # shorthand: ``clock_skew: 1500`` -> the kind's first parameter
                first = next(iter(KINDS.get(kind, {}) or {"_": None}))
                params = {first: params}
            specs.append(normalize({"kind": kind, **params}))
        return specs
    if isinstance(source, Iterable):
        return [normalize(s) for s in source]
    raise ValueError(f"faults: expected a list or mapping, got {type(source).__name__}")


@dataclass(slots=True)
class OrderFault:
    """A one-shot fault consumed by the next matching order request."""

    kind: str  # order_5xx | ack_delay | ack_lost
    remaining: int
    api_key: str | None
    actions: tuple[str, ...]
    status: int = 503
    ms: int = 0


@dataclass(slots=True)
class _UserPlan:
    remaining: int
    api_key: str | None


@dataclass
class FaultController:
    """Active fault state of one server; every method runs on the server's event loop thread."""

    targets: FaultTargets | None = None
    clock_skew_ms: int = 0
    _gap_symbols: dict[str, int] = field(default_factory=dict)
    _stall_until: dict[str, float] = field(default_factory=dict)
    _order: list[OrderFault] = field(default_factory=list)
    _dup: list[_UserPlan] = field(default_factory=list)
    _lost: list[_UserPlan] = field(default_factory=list)
    _scheduled: list[dict[str, Any]] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    history: list[dict[str, Any]] = field(default_factory=list)

    # -- applying ---------------------------------------------------------------------------------
    def submit(self, specs: Any) -> list[dict[str, Any]]:
        """Apply specs now, or schedule those with ``at_s``/``every_s``; returns the normalized specs."""
        norm = parse_specs(specs)
        for spec in norm:
            if "at_s" in spec or "every_s" in spec:
                self._schedule(spec)
            else:
                self.apply(spec)
        return norm

    def _schedule(self, spec: dict[str, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._scheduled.append(spec)  # started later by ``start``
            return
        task = loop.create_task(self._run_scheduled(spec))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        """Start scheduled specs submitted before the loop ran (config ``faults:``)."""
        pending, self._scheduled = self._scheduled, []
        for spec in pending:
            self._schedule(spec)

    async def _run_scheduled(self, spec: dict[str, Any]) -> None:
        once = {k: v for k, v in spec.items() if k not in _SCHEDULE_KEYS}
        await asyncio.sleep(spec.get("at_s", spec.get("every_s", 0.0)) or 0.0)
        while True:
            self.apply(once)
            every = spec.get("every_s")
            if not every:
                return
            await asyncio.sleep(every)

    def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def apply(self, spec: Mapping[str, Any]) -> Any:
        spec = normalize(spec)
        kind = spec["kind"]
        self.history.append(spec)
        t = self.targets
        if kind == "drop":
            return t.drop_connections(spec["target"]) if t else 0
        if kind == "depth_gap":
            symbols = [spec["symbol"]] if spec["symbol"] else (t.symbols() if t else [])
            for sym in symbols:
                self._gap_symbols[sym] = self._gap_symbols.get(sym, 0) + 1
            return None
        if kind == "stall":
            until = time.monotonic() + spec["seconds"]
            for target in ("market", "user") if spec["target"] == "all" else (spec["target"],):
                self._stall_until[target] = until
            return None
        if kind == "rate_limit_storm":
            if t:
                t.rate_limit_storm(spec["seconds"])
            return None
        if kind == "clock_skew":
            self.clock_skew_ms = spec["ms"]
            return None
        if kind in ("order_5xx", "ack_delay", "ack_lost"):
            self._order.append(
                OrderFault(
                    kind,
                    spec["count"],
                    spec["api_key"],
                    tuple(spec["actions"]),
                    status=spec.get("status", 503),
                    ms=spec.get("ms", 0),
                )
            )
            return None
        if kind == "user_stream_terminated":
            return t.terminate_user_streams(spec["api_key"]) if t else 0
        if kind == "duplicate_user_events":
            self._dup.append(_UserPlan(spec["count"], spec["api_key"]))
            return None
        if kind == "lost_user_events":
            self._lost.append(_UserPlan(spec["count"], spec["api_key"]))
            return None
        if kind == "clear":
            self.clear()
            return None
        raise AssertionError(kind)  # pragma: no cover - normalize() rejects unknown kinds

    def clear(self) -> None:
        self.clock_skew_ms = 0
        self._gap_symbols.clear()
        self._stall_until.clear()
        self._order.clear()
        self._dup.clear()
        self._lost.clear()
        self.stop()
        if self.targets:
            self.targets.clear_rate_limits()

    # -- queries used by the server (hot paths stay cheap when nothing is armed) --------------------
    def take_depth_gap(self, symbol: str) -> bool:
        """True if this depth diff of ``symbol`` must be skipped (consumes one armed gap)."""
        if not self._gap_symbols:
            return False
        n = self._gap_symbols.get(symbol)
        if not n:
            return False
        if n == 1:
            del self._gap_symbols[symbol]
        else:
            self._gap_symbols[symbol] = n - 1
        return True

    def stalled(self, target: str) -> bool:
        if not self._stall_until:
            return False
        until = self._stall_until.get(target)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._stall_until[target]
            return False
        return True

    def take_order_fault(self, api_key: str, action: str) -> OrderFault | None:
        if not self._order:
            return None
        for f in self._order:
            if action in f.actions and (f.api_key is None or f.api_key == api_key):
                f.remaining -= 1
                if f.remaining <= 0:
                    self._order.remove(f)
                return f
        return None

    def user_copies(self, api_key: str) -> int:
        """How many times to send the next user event: 0 lost, 1 normal, 2 duplicated."""
        if not self._dup and not self._lost:
            return 1
        for plans, copies in ((self._lost, 0), (self._dup, 2)):
            for p in plans:
                if p.api_key is None or p.api_key == api_key:
                    p.remaining -= 1
                    if p.remaining <= 0:
                        plans.remove(p)
                    return copies
        return 1

    def state(self) -> dict[str, Any]:
        now = time.monotonic()
        return {
            "clock_skew_ms": self.clock_skew_ms,
            "depth_gaps": dict(self._gap_symbols),
            "stalled": {k: round(v - now, 3) for k, v in self._stall_until.items() if v > now},
            "order_faults": [
                {"kind": f.kind, "remaining": f.remaining, "api_key": f.api_key, "actions": list(f.actions)}
                for f in self._order
            ],
            "duplicate_user_events": sum(p.remaining for p in self._dup),
            "lost_user_events": sum(p.remaining for p in self._lost),
            "scheduled": len(self._tasks) + len(self._scheduled),
        }
