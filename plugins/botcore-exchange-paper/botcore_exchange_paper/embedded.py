"""Run the paper exchange inside the current process: its own event loop in a daemon thread.

The venue is single-threaded (no locks): it is built and used only on the loop thread. Other
threads reach it through :meth:`EmbeddedPaper.call`, which hops onto the loop with
``call_soon_threadsafe`` and waits for the result.

URL conventions (decided once, documented in the README):

* ``rest_url``   = ``http://127.0.0.1:<port>/api``  (python-binance ``API_URL``; ccxt wants ``rest_url + "/v3"``)
* ``base_url``   = ``http://127.0.0.1:<port>``      (binance-sdk-spot ``base_path``, binance-connector ``base_url``)
* ``stream_url`` = ``ws://127.0.0.1:<port>/``       (python-binance ``STREAM_URL``: ``+ "ws/<s>"`` or ``+ "stream?streams="``)
* ``ws_api_url`` = ``ws://127.0.0.1:<port>/ws-api/v3``
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web

from botcore.contracts import VenueEndpoints
from botcore_exchange_paper.faults import FaultController, parse_specs
from botcore_exchange_paper.options import ServerOptions
from botcore_exchange_paper.server import PaperServer

log = logging.getLogger("botcore.paper")
T = TypeVar("T")


def _default_venue(config: Any) -> Any:
    from botcore_exchange_paper.venue import Venue

    return Venue(config)


class FaultsHandle:
    """Thread-safe fault control for tests: ``paper.faults.inject("order_5xx", count=1)``."""

    def __init__(self, paper: EmbeddedPaper) -> None:
        self._paper = paper

    def _ctl(self) -> FaultController:
        server = self._paper.server
        assert server is not None
        return server.faults

    def submit(self, specs: Any) -> list[dict[str, Any]]:
        """Apply one spec, a list of specs or a ``kind -> params`` mapping (see ``faults``)."""
        return self._paper.call(lambda: self._ctl().submit(specs))

    def inject(self, kind: str, **params: Any) -> Any:
        """Apply one fault now and return its immediate result (e.g. connections dropped)."""
        return self._paper.call(lambda: self._ctl().apply({"kind": kind, **params}))

    def clear(self) -> None:
        self._paper.call(lambda: self._ctl().clear())

    def state(self) -> dict[str, Any]:
        return self._paper.call(lambda: self._ctl().state())

    # convenience wrappers, one per kind
    def drop(self, target: str = "all") -> int:
        return self.inject("drop", target=target)

    def depth_gap(self, symbol: str | None = None) -> None:
        self.inject("depth_gap", symbol=symbol)

    def stall(self, target: str = "market", seconds: float = 5.0) -> None:
        self.inject("stall", target=target, seconds=seconds)

    def rate_limit_storm(self, seconds: float = 10.0) -> None:
        self.inject("rate_limit_storm", seconds=seconds)

    def clock_skew(self, ms: int) -> None:
        self.inject("clock_skew", ms=ms)

    def order_5xx(self, count: int = 1, **kw: Any) -> None:
        self.inject("order_5xx", count=count, **kw)

    def ack_delay(self, ms: int, count: int = 1, **kw: Any) -> None:
        self.inject("ack_delay", ms=ms, count=count, **kw)

    def ack_lost(self, count: int = 1, **kw: Any) -> None:
        self.inject("ack_lost", count=count, **kw)

    def user_stream_terminated(self, api_key: str | None = None) -> int:
        return self.inject("user_stream_terminated", api_key=api_key)

    def duplicate_user_events(self, count: int = 1, api_key: str | None = None) -> None:
        self.inject("duplicate_user_events", count=count, api_key=api_key)

    def lost_user_events(self, count: int = 1, api_key: str | None = None) -> None:
        self.inject("lost_user_events", count=count, api_key=api_key)


class EmbeddedPaper:
    """Handle on a running embedded paper exchange. ``close()`` (or ``with``) stops it."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.server: PaperServer | None = None
        self.venue: Any = None
        self.host = "127.0.0.1"
        self.port = 0
        self.api_key = ""
        self._api_secret = ""
        self.faults = FaultsHandle(self)
        self._runner: web.AppRunner | None = None
        self._closed = False

    # -- URLs -------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def stream_url(self) -> str:
        return f"ws://{self.host}:{self.port}/"

    @property
    def ws_api_url(self) -> str:
        return f"ws://{self.host}:{self.port}/ws-api/v3"

    @property
    def api_secret(self) -> str:
        return self._api_secret

    def endpoints(self) -> VenueEndpoints:
        return VenueEndpoints(
            rest_url=self.rest_url,
            stream_url=self.stream_url,
            ws_api_url=self.ws_api_url,
            api_key=self.api_key,
            api_secret=self._api_secret,
            close=self.close,
            done=self.done,
            progress=self.progress,
        )

    def __repr__(self) -> str:
        return f"EmbeddedPaper(rest_url={self.rest_url!r}, api_key={self.api_key!r}, closed={self._closed})"

    # -- running on the loop thread ---------------------------------------------------------------
    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30.0) -> T:
        """Run ``fn(*args)`` on the loop thread and return its result (exceptions propagate)."""
        loop = self.loop
        if loop is None or self._closed:
            raise RuntimeError("paper exchange is not running")
        if threading.current_thread() is self.thread:
            return fn(*args)
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return fut.result(timeout)

    def venue_call(self, fn: Callable[[Any], T], timeout: float = 30.0) -> T:
        """``paper.venue_call(lambda v: v.depth("BTCUSDT", 5))`` on the loop thread."""
        return self.call(fn, self.venue, timeout=timeout)

    def step(self, n: int = 1) -> int:
        """Process the next ``n`` market events now (deterministic tests; use with ``run_market=False``)."""
        return self.call(self.venue.step, n)

    def status(self) -> dict[str, Any]:
        assert self.server is not None
        return self.call(self.server.status)

    def snapshot(self) -> dict[str, Any]:
        assert self.server is not None
        return self.call(self.server.snapshot)

    def progress(self) -> dict[str, Any]:
        """Replay progress for ``botcore run``'s status line (``elapsed_s``, ``events``, ``done``)."""
        from botcore_exchange_paper.child import progress_from_status

        if self._closed or self.loop is None:
            return {"elapsed_s": 0.0, "events": 0, "done": True}
        return progress_from_status(self.status())

    def done(self) -> bool:
        """True once the replay finished (or the exchange was closed)."""
        return bool(self.progress()["done"])

    def external_order(self, params: dict[str, Any], api_key: str | None = None) -> dict[str, Any]:
        """Place an order "outside the bot" on an account (default: the default account)."""

        def run() -> dict[str, Any]:
            assert self.server is not None
            account = self.server.account_for(api_key or self.api_key)
            return self.venue.external_order(account, {k: str(v) for k, v in params.items()})

        return self.call(run)

    def add_account(self, api_key: str, api_secret: str, balances: dict[str, Any]) -> None:
        self.call(
            lambda: self.venue.add_account(
                api_key, api_secret, {k: Decimal(str(v)) for k, v in balances.items()}
            )
        )

    def start_market(self) -> bool:
        """Start pacing the market now (after ``run_market=False``); False if it already runs."""
        assert self.server is not None
        return self.call(self.server.start_market)

    def wait_done(self, timeout: float = 60.0) -> bool:
        """Wait until the replay finished; True if it did within ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.call(lambda: bool(self.venue.market_done)):
                return True
            time.sleep(0.02)
        return False

    # -- lifecycle --------------------------------------------------------------------------------
    def _thread_main(self, started: concurrent.futures.Future[None], start: Callable[[], Any]) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(start())
        except BaseException as exc:
            started.set_exception(exc)
            loop.close()
            return
        started.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the server and the market, join the thread. Idempotent."""
        if self._closed or self.loop is None:
            self._closed = True
            return
        loop = self.loop
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), loop).result(timeout)
        except Exception:  # best effort: the thread is a daemon anyway
            log.exception("paper exchange did not stop cleanly")
        self._closed = True
        loop.call_soon_threadsafe(loop.stop)
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def __enter__(self) -> EmbeddedPaper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_embedded(
    config: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    options: ServerOptions | dict[str, Any] | None = None,
    faults: Any = None,
    run_market: bool = True,
    venue_factory: Callable[[Any], Any] | None = None,
) -> EmbeddedPaper:
    """Start the paper exchange on ``host:port`` (0 = a free port) in a daemon thread.

    ``options``/``faults`` default to ``config.options``/``config.faults``. With ``run_market=False``
    the market only moves when a test calls ``step``. ``venue_factory(config)`` replaces the venue
    (tests of the transport alone).
    """
    if options is None:
        options = getattr(config, "options", None) or {}
    opts = options if isinstance(options, ServerOptions) else ServerOptions.from_dict(options)
    specs = parse_specs(faults if faults is not None else getattr(config, "faults", None))
    factory = venue_factory or _default_venue
    paper = EmbeddedPaper()
    paper.host = host

    async def start() -> None:
        venue = factory(config)
        controller = FaultController()
        server = PaperServer(venue, options=opts, faults=controller)
        runner = web.AppRunner(server.build_app(), access_log=None, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        paper.port = sockets[0].getsockname()[1] if sockets else port
        paper.venue, paper.server, paper._runner = venue, server, runner
        controller.submit(specs)
        key = server.default_api_key()
        account = server.account_for(key)
        paper.api_key, paper._api_secret = account.api_key, account.api_secret
        if run_market:
            server.start_market()

    started: concurrent.futures.Future[None] = concurrent.futures.Future()
    paper.thread = threading.Thread(
        target=paper._thread_main, args=(started, start), name="paper-exchange", daemon=True
    )
    paper.thread.start()
    started.result(60)
    return paper
