"""Helpers for the paper exchange transport tests: servers on free loopback ports, hand-signed REST
and WebSocket API requests, a small JSON websocket client.

Every server replays the shipped recording at speed 0 without its pacing task (``run_market=False``):
tests move the market with ``paper.step``. Requests are signed by hand so tests control every byte.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests
import websocket
from botcore_exchange_paper.config import AccountSpec, PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded

KEY = "PaperTestKeyA0000000000000000000000000000000000000000000000000001"
SECRET = "PaperTestSecretA000000000000000000000000000000000000000000000001"
KEY2 = "PaperTestKeyB0000000000000000000000000000000000000000000000000002"
SECRET2 = "PaperTestSecretB000000000000000000000000000000000000000000000002"
SYMBOL = "BTCUSDT"
WARMUP_EVENTS = 400  # recorded events processed before a test module starts (book + some trades)


def make_config(**kw: Any) -> PaperConfig:
    accounts = [
        AccountSpec(KEY, SECRET, {"USDT": Decimal("100000"), "BTC": Decimal("2")}),
        AccountSpec(KEY2, SECRET2, {"USDT": Decimal("50000"), "BTC": Decimal("1")}),
    ]
    kw.setdefault("speed", 0)
    return PaperConfig(accounts=accounts, **kw)


def start_paper(*, options: dict[str, Any] | None = None, faults: Any = None, warmup: int = WARMUP_EVENTS,
                **config: Any) -> EmbeddedPaper:  # fmt: skip
    paper = start_embedded(make_config(**config), options=options or {}, faults=faults, run_market=False)
    if warmup:
        paper.step(warmup)
    return paper


# ---------------------------------------------------------------------------------------------
# REST helper
# ---------------------------------------------------------------------------------------------


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


class Rest:
    """Hand-signed REST requests over one keep-alive session."""

    def __init__(self, paper: EmbeddedPaper, key: str = KEY, secret: str = SECRET) -> None:
        self.base = paper.rest_url + "/v3/"
        self.key = key
        self.secret = secret
        self.s = requests.Session()

    def public(self, path: str, method: str = "GET", **params: Any) -> requests.Response:
        return self.s.request(method, self.base + path, params=params, timeout=10)

    def signed(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        where: str = "query",
        timestamp: int | None = None,
        key: str | None = None,
        secret: str | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 10,
    ) -> requests.Response:
        """``where``: query | body | split (first half in the query, the rest in the body)."""
        p = dict(params or {})
        p.setdefault("timestamp", timestamp if timestamp is not None else now_ms())
        items = [(k, str(v)) for k, v in p.items()]
        if where == "query":
            q, b = urlencode(items), ""
        elif where == "body":
            q, b = "", urlencode(items)
        else:
            half = len(items) // 2
            q, b = urlencode(items[:half]), urlencode(items[half:])
        sig = signature if signature is not None else sign(secret or self.secret, q + b)
        if b:
            b += "&signature=" + sig
        else:
            q += ("&" if q else "") + "signature=" + sig
        hdrs = {"X-MBX-APIKEY": key if key is not None else self.key}
        if b:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        hdrs.update(headers or {})
        url = self.base + path + ("?" + q if q else "")
        return self.s.request(method, url, data=b or None, headers=hdrs, timeout=timeout)

    # shortcuts
    def order(self, **params: Any) -> requests.Response:
        return self.signed("POST", "order", {"symbol": SYMBOL, **params})

    def limit(self, side: str, price: str, qty: str = "0.001", **extra: Any) -> requests.Response:
        return self.order(side=side, type="LIMIT", timeInForce="GTC", quantity=qty, price=price, **extra)


def book(rest: Rest, limit: int = 5) -> dict[str, Any]:
    r = rest.public("depth", symbol=SYMBOL, limit=limit)
    assert r.status_code == 200, r.text
    return r.json()


def passive_prices(rest: Rest) -> tuple[str, str]:
    """A bid and an ask price far enough from the touch to rest, inside PERCENT_PRICE_BY_SIDE."""
    d = book(rest)
    bid = Decimal(d["bids"][0][0]) * Decimal("0.99")
    ask = Decimal(d["asks"][0][0]) * Decimal("1.01")
    return f"{bid.quantize(Decimal('0.01'))}", f"{ask.quantize(Decimal('0.01'))}"


def balances(paper: EmbeddedPaper, key: str = KEY) -> dict[str, tuple[str, str]]:
    snap = paper.snapshot()
    acct = next(a for a in snap["accounts"] if a["api_key"] == key)
    return {b["asset"]: (b["free"], b["locked"]) for b in acct["balances"]}


def open_order_ids(paper: EmbeddedPaper, key: str = KEY) -> list[int]:
    snap = paper.snapshot()
    acct = next(a for a in snap["accounts"] if a["api_key"] == key)
    return sorted(o["orderId"] for o in acct["open_orders"])


# ---------------------------------------------------------------------------------------------
# WebSocket helpers (websocket-client, synchronous; it answers server pings itself)
# ---------------------------------------------------------------------------------------------


class Ws:
    """A JSON websocket client with a receive-until helper."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.ws = websocket.create_connection(url, timeout=timeout, enable_multithread=True)

    def send(self, obj: Any) -> None:
        self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    def recv(self, timeout: float = 5.0) -> Any:
        self.ws.settimeout(timeout)
        raw = self.ws.recv()
        if raw in ("", b""):  # a close frame
            raise websocket.WebSocketConnectionClosedException("closed by the server")
        return json.loads(raw)

    def until(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> tuple[Any, list[Any]]:
        """Receive until ``pred(msg)``; return (that message, everything received before it)."""
        seen: list[Any] = []
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no matching message; got {seen[-5:]}")
            msg = self.recv(left)
            if pred(msg):
                return msg, seen
            seen.append(msg)

    def drain(self, quiet: float = 0.2) -> list[Any]:
        out: list[Any] = []
        while True:
            try:
                out.append(self.recv(quiet))
            except (websocket.WebSocketTimeoutException, TimeoutError):
                return out

    def close(self) -> None:
        self.ws.close()


def ws_signed(method: str, params: dict[str, Any], req_id: Any = 1, key: str = KEY, secret: str = SECRET,
              timestamp: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A WS API request signed over the alphabetically sorted params."""
    p = {"apiKey": key, **params}
    p.setdefault("timestamp", timestamp if timestamp is not None else now_ms())
    payload = "&".join(f"{k}={p[k]}" for k in sorted(p))
    p["signature"] = sign(secret, payload)
    return {"id": req_id, "method": method, "params": p}


def wait_for(pred: Callable[[], bool], timeout: float = 5.0, every: float = 0.01) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(every)
    raise TimeoutError("condition not met")
