"""Paper exchange throughput: REST order round trips and market data to one websocket client.

The server runs in its own process (as ``botcore paper serve`` would), so client and server each get
one of the machine's cores; every figure is the median over repetitions, with the transport floor
(``GET /api/v3/ping``) measured in the same run as the baseline for the ratios.

    python bench/bench_paper.py [--reps 5] [--orders 300]

Rows:
  REST ping                  keep-alive requests.Session, unsigned GET      (requests / s)
  REST signed GET account    HMAC-signed, weight 20                         (requests / s)
  REST place+cancel          signed POST order + DELETE order, one session  (round trips / s, 2 requests each)
  http.client ping / place+cancel   the same over a bare http.client keep-alive connection
  WS API place+cancel        order.place + order.cancel on one connection   (round trips / s)
  market data, speed 0       whole shipped recording replayed to one client (messages / s received)
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import http.client
import json
import multiprocessing as mp
import statistics
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests

KEY = "BenchKey000000000000000000000000000000000000000000000000000000001"
SECRET = "BenchSecret0000000000000000000000000000000000000000000000000000001"
SYMBOL = "BTCUSDT"


def serve(conn: Any, options: dict[str, Any]) -> None:
    """Child process: an embedded paper exchange whose market moves only when asked."""
    from botcore_exchange_paper.config import AccountSpec, PaperConfig
    from botcore_exchange_paper.embedded import start_embedded

    cfg = PaperConfig(
        speed=0, accounts=[AccountSpec(KEY, SECRET, {"USDT": Decimal(10**9), "BTC": Decimal(10**4)})]
    )
    paper = start_embedded(cfg, options=options, run_market=False)
    conn.send({"base": paper.base_url, "ws": f"ws://127.0.0.1:{paper.port}"})
    conn.recv()
    paper.close()


class Server:
    def __init__(self, **options: Any) -> None:
        ctx = mp.get_context("spawn")
        self.parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=serve, args=(child, options), daemon=True)
        self.proc.start()
        urls = self.parent.recv()
        self.base: str = urls["base"]
        self.ws: str = urls["ws"]

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return requests.post(self.base + "/paper/" + path, json=body or {}, timeout=60).json()

    def close(self) -> None:
        self.parent.send("stop")
        self.proc.join(10)


def sign(payload: str) -> str:
    return hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_url(base: str, path: str, params: dict[str, Any]) -> str:
    q = urlencode({**params, "timestamp": now_ms()})
    return f"{base}/api/v3/{path}?{q}&signature={sign(q)}"


def passive_bid(base: str) -> str:
    d = requests.get(base + "/api/v3/depth", params={"symbol": SYMBOL, "limit": 5}, timeout=5).json()
    return f"{(Decimal(d['bids'][0][0]) * Decimal('0.99')).quantize(Decimal('0.01'))}"


def rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - start)


def bench_rest(server: Server, n: int) -> dict[str, float]:
    s = requests.Session()
    h = {"X-MBX-APIKEY": KEY}
    base = server.base
    bid = passive_bid(base)

    def ping() -> None:
        s.get(base + "/api/v3/ping", timeout=5).raise_for_status()

    def account() -> None:
        s.get(signed_url(base, "account", {}), headers=h, timeout=5).raise_for_status()

    def place_cancel() -> None:
        r = s.post(signed_url(base, "order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                              "quantity": "0.001", "price": bid, "newOrderRespType": "ACK"}),
                   headers=h, timeout=5)  # fmt: skip
        r.raise_for_status()
        oid = r.json()["orderId"]
        s.delete(
            signed_url(base, "order", {"symbol": SYMBOL, "orderId": oid}), headers=h, timeout=5
        ).raise_for_status()

    # the same requests over a bare http.client connection: what the server sustains when the
    # client library is not the bottleneck (requests spends ~1 ms per call on its own)
    host, port = base.removeprefix("http://").split(":")
    raw = http.client.HTTPConnection(host, int(port), timeout=5)

    def raw_call(method: str, url: str) -> bytes:
        raw.request(method, url.removeprefix(base), headers=h)
        r = raw.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(body)
        return body

    def raw_ping() -> None:
        raw_call("GET", base + "/api/v3/ping")

    def raw_place_cancel() -> None:
        body = raw_call("POST", signed_url(base, "order", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                           "timeInForce": "GTC", "quantity": "0.001", "price": bid,
                                                           "newOrderRespType": "ACK"}))  # fmt: skip
        raw_call(
            "DELETE", signed_url(base, "order", {"symbol": SYMBOL, "orderId": json.loads(body)["orderId"]})
        )

    for fn in (ping, account, place_cancel, raw_ping, raw_place_cancel):  # warm up connections and code paths
        fn()
    return {
        "REST ping": rate(n * 2, ping),
        "REST signed GET account": rate(n * 2, account),
        "REST place+cancel": rate(n, place_cancel),
        "http.client ping": rate(n * 2, raw_ping),
        "http.client place+cancel": rate(n, raw_place_cancel),
    }


def bench_ws_api(server: Server, n: int) -> float:
    import aiohttp

    bid = passive_bid(server.base)

    def req(i: int, method: str, params: dict[str, Any]) -> str:
        p = {"apiKey": KEY, **params, "timestamp": now_ms()}
        p["signature"] = sign("&".join(f"{k}={p[k]}" for k in sorted(p)))
        return json.dumps({"id": i, "method": method, "params": p})

    async def run() -> float:
        async with aiohttp.ClientSession() as session, session.ws_connect(server.ws + "/ws-api/v3") as ws:

            async def one(i: int) -> None:
                await ws.send_str(req(i, "order.place", {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT",
                                                         "timeInForce": "GTC", "quantity": "0.001", "price": bid,
                                                         "newOrderRespType": "ACK"}))  # fmt: skip
                placed = json.loads((await ws.receive()).data)
                oid = placed["result"]["orderId"]
                await ws.send_str(req(-i, "order.cancel", {"symbol": SYMBOL, "orderId": oid}))
                cancelled = json.loads((await ws.receive()).data)
                assert cancelled["status"] == 200, cancelled

            await one(0)
            start = time.perf_counter()
            for i in range(1, n + 1):
                await one(i)
            return n / (time.perf_counter() - start)

    return asyncio.run(run())


def bench_market(server: Server) -> tuple[float, int]:
    """Messages/s one client receives while the whole recording is replayed at speed 0."""
    import aiohttp

    streams = "/".join(f"btcusdt@{s}" for s in ("depth@100ms", "bookTicker", "trade", "aggTrade"))

    async def run() -> tuple[float, int]:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(server.ws + "/stream?streams=" + streams, max_msg_size=0) as ws,
        ):
            await ws.send_str('{"method":"LIST_SUBSCRIPTIONS","id":1}')
            await ws.receive()  # subscribed for sure
            await asyncio.to_thread(server.control, "start_market")
            n = 0
            first = last = 0.0
            while True:
                try:
                    msg = await ws.receive(timeout=1.0)
                except TimeoutError:
                    break  # the replay ended and the outbox is drained
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                last = time.perf_counter()
                if n == 0:
                    first = last
                n += 1
            return n / (last - first), n

    return asyncio.run(run())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--orders", type=int, default=300, help="place+cancel round trips per repetition")
    args = ap.parse_args()
    opts = {"rate_limit_scale": 10_000, "outbox_limit": 10_000_000}  # measure the transport, not the limits
    results: dict[str, list[float]] = {}
    server = Server(**opts)
    try:
        server.control("step", {"n": 400})
        for _ in range(args.reps):
            for name, value in bench_rest(server, args.orders).items():
                results.setdefault(name, []).append(value)
            results.setdefault("WS API place+cancel", []).append(bench_ws_api(server, args.orders))
    finally:
        server.close()
    messages = 0
    for _ in range(min(args.reps, 3)):
        server = Server(**opts)  # a fresh replay per repetition
        try:
            value, messages = bench_market(server)
            results.setdefault("market data, speed 0", []).append(value)
        finally:
            server.close()

    base = statistics.median(results["REST ping"])
    units = {"REST place+cancel": "round trips/s", "http.client place+cancel": "round trips/s",
             "WS API place+cancel": "round trips/s", "market data, speed 0": "messages/s"}  # fmt: skip
    print(
        f"paper exchange bench: {mp.cpu_count()} cores, server in its own process, medians of {args.reps} reps"
        f" ({args.orders} round trips each; market: {messages} messages per replay)"
    )
    print(f"{'measurement':<28}{'median':>12}  {'unit':<14}{'min':>10}{'max':>10}{'vs ping':>9}")
    for name, values in results.items():
        med = statistics.median(values)
        print(
            f"{name:<28}{med:>12,.0f}  {units.get(name, 'requests/s'):<14}{min(values):>10,.0f}"
            f"{max(values):>10,.0f}{med / base:>9.2f}"
        )


if __name__ == "__main__":
    main()
