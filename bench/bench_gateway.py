"""Order entry: REST (python-binance, keep-alive pool) vs WebSocket API, through botcore's Gateway.

Against the paper exchange (embedded in this process by default, or in a child process with
``--venue process`` so the venue does not share our GIL), for each transport:

* latency, one order in flight: "engine decided" (the hand-off to ``Gateway.submit``/``cancel``)
  -> "request on the wire" (the adapter's ``OrderOutcome.sent_ns``: the request fully written to
  the socket), and the request's round trip (wire -> answer); medians and p99;
* throughput: place+cancel round trips per second with ``--workers`` requests in flight.

Each figure is the median over ``--reps`` repetitions; the ratio column is ws_api / rest.
Run: ``python bench/bench_gateway.py [--orders 300] [--reps 5] [--workers 4] [--venue process]``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from botcore_exchange_binance.adapter import BinanceAdapter
from botcore_exchange_binance.clock import now_ns

from botcore.contracts import VenueEndpoints
from botcore.events import GatewayResult
from botcore.gateway import Gateway
from botcore.model import CancelRequest, OrderRequest, OrderStatus, Side

PAPER_OPTIONS = {"rate_limit_scale": 1000.0}  # the bench is not about rate limits

_CHILD = r"""
import json, sys
from botcore_exchange_paper.config import PaperConfig
from botcore_exchange_paper.embedded import start_embedded
p = start_embedded(PaperConfig(synthetic=True, options=json.loads(sys.argv[1])), run_market=False)
p.step(200)
print(json.dumps({"rest_url": p.rest_url, "stream_url": p.stream_url, "ws_api_url": p.ws_api_url,
                  "api_key": p.api_key, "api_secret": p.api_secret}), flush=True)
sys.stdin.read()
p.close()
"""


class QueueSink:
    def __init__(self) -> None:
        self.q: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def put(self, event: Any) -> None:
        self.q.put(event)

    def get(self, timeout: float = 10.0) -> GatewayResult:
        while True:
            ev = self.q.get(timeout=timeout)
            if isinstance(ev, GatewayResult):
                return ev


def start_venue(kind: str) -> tuple[VenueEndpoints, Callable[[], None]]:
    if kind == "process":
        proc = subprocess.Popen([sys.executable, "-c", _CHILD, json.dumps(PAPER_OPTIONS)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdin is not None
        info = json.loads(proc.stdout.readline())

        def close() -> None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(10)

        return VenueEndpoints(**info), close
    from botcore_exchange_paper.config import PaperConfig
    from botcore_exchange_paper.embedded import start_embedded

    paper = start_embedded(PaperConfig(synthetic=True, options=PAPER_OPTIONS), run_market=False)
    paper.step(200)
    return paper.endpoints(), paper.close


def adapter_for(endpoints: VenueEndpoints, transport: str, pool: int) -> BinanceAdapter:
    cfg = SimpleNamespace(exchange=SimpleNamespace(
        mode="paper", symbols=["BTCUSDT"], options={"order_transport": transport, "rest_pool_size": pool}))
    adapter = BinanceAdapter.from_config(cfg, endpoints)
    adapter.exchange_info(["BTCUSDT"])
    adapter.resync_clock(min_age_s=0)
    if adapter.ws_api is not None:
        adapter.ws_api.start()
        adapter.ws_api.socket.wait_open(10)
    return adapter


def quote_price(adapter: BinanceAdapter) -> Decimal:
    book = json.loads(adapter.depth_snapshot("BTCUSDT", 5))
    inst = adapter._instruments["BTCUSDT"]
    return inst.round_price(Decimal(book["bids"][0][0]) * Decimal("0.99"), Side.BUY)  # rests, never fills


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] / 1000.0  # ns -> us


class Run:
    def __init__(self, adapter: BinanceAdapter, price: Decimal, tag: str) -> None:
        self.adapter, self.price, self.tag, self.n = adapter, price, tag, 0

    def order(self) -> OrderRequest:
        self.n += 1
        return OrderRequest("BTCUSDT", Side.BUY, Decimal("0.0002"), self.price, client_order_id=f"{self.tag}-{self.n}")

    def latency(self, orders: int) -> dict[str, float]:
        """One request in flight: decided -> wire, wire -> answer."""
        sink = QueueSink()
        gw = Gateway(self.adapter, sink, max_workers=1)
        to_wire: list[int] = []
        rtt: list[int] = []
        try:
            for _ in range(orders):
                o = self.order()
                t0 = now_ns()
                gw.submit(o)
                out = sink.get().outcome
                assert out.status is OrderStatus.NEW, out
                to_wire.append(out.sent_ns - t0)
                rtt.append(out.done_ns - out.sent_ns)
                t0 = now_ns()
                gw.cancel(CancelRequest("BTCUSDT", o.client_order_id))
                out = sink.get().outcome
                assert out.status is OrderStatus.CANCELED, out
                to_wire.append(out.sent_ns - t0)
                rtt.append(out.done_ns - out.sent_ns)
        finally:
            gw.close()
        return {"wire_p50": pct(to_wire, 0.5), "wire_p99": pct(to_wire, 0.99), "rtt_p50": pct(rtt, 0.5),
                "rtt_p99": pct(rtt, 0.99)}

    def throughput(self, pairs: int, workers: int) -> float:
        """Place+cancel round trips per second with ``workers`` requests in flight."""
        sink = QueueSink()
        gw = Gateway(self.adapter, sink, max_workers=workers)
        done = 0
        started = 0
        t0 = time.perf_counter()
        try:
            for _ in range(min(workers, pairs)):
                gw.submit(self.order())
                started += 1
            while done < pairs:
                out = sink.get().outcome
                if out.action == "new":
                    assert out.status is OrderStatus.NEW, out
                    gw.cancel(CancelRequest("BTCUSDT", out.client_order_id))
                else:
                    assert out.status is OrderStatus.CANCELED, out
                    done += 1
                    if started < pairs:
                        gw.submit(self.order())
                        started += 1
        finally:
            gw.close()
        return pairs / (time.perf_counter() - t0)


def measure(orders: int = 300, reps: int = 5, workers: int = 4, venue: str = "embedded") -> dict[str, dict[str, float]]:
    """Medians over ``reps`` (transports interleaved): {"rest"|"ws_api": {wire_p50, wire_p99, rtt_p50,
    rtt_p99, pairs_per_s}}; latencies in µs. ``bench/run.py`` calls this."""
    endpoints, close = start_venue(venue)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        adapters = {t: adapter_for(endpoints, t, workers) for t in ("rest", "ws_api")}
        price = quote_price(adapters["rest"])
        runs = {t: Run(a, price, f"bench{t.replace('_', '')}{os.getpid()}") for t, a in adapters.items()}
        for t in runs:  # warm-up: connections, caches
            runs[t].latency(20)
        for _ in range(reps):
            for t, run in runs.items():  # interleaved so drift hits both transports alike
                lat = run.latency(orders)
                tput = run.throughput(orders, workers)
                r = results.setdefault(t, {})
                for k, v in lat.items():
                    r.setdefault(k, []).append(v)
                r.setdefault("pairs_per_s", []).append(tput)
        for a in adapters.values():
            a.stop()
    finally:
        close()
    return {t: {k: statistics.median(v) for k, v in r.items()} for t, r in results.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=300, help="orders per repetition (each is placed and cancelled)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--workers", type=int, default=4, help="requests in flight for the throughput figure")
    ap.add_argument("--venue", choices=("embedded", "process"), default="embedded")
    args = ap.parse_args()

    med = measure(args.orders, args.reps, args.workers, args.venue)
    rows = [
        ("decided -> on the wire, p50 (us)", "wire_p50"),
        ("decided -> on the wire, p99 (us)", "wire_p99"),
        ("request round trip, p50 (us)", "rtt_p50"),
        ("request round trip, p99 (us)", "rtt_p99"),
        (f"place+cancel pairs/s ({args.workers} in flight)", "pairs_per_s"),
    ]
    print(f"\nbench_gateway: venue={args.venue}, {args.orders} orders x {args.reps} reps "
          f"(medians over reps; python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    print(f"{'metric':<44}{'rest':>12}{'ws_api':>12}{'ws_api/rest':>13}")
    for label, key in rows:
        r, w = med["rest"][key], med["ws_api"][key]
        print(f"{label:<44}{r:>12.1f}{w:>12.1f}{w / r:>13.2f}")
    faster = "ws_api" if med["ws_api"]["rtt_p50"] + med["ws_api"]["wire_p50"] < (
        med["rest"]["rtt_p50"] + med["rest"]["wire_p50"]) else "rest"
    print(f"\nlower decided->answer latency: {faster}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
