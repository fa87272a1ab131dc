"""The user-data stream over the WebSocket API (``userDataStream.subscribe.signature``).

The listenKey REST endpoints are retired on Binance (2026-02); the subscription lives on a
WebSocket API connection and dies with it. So:

* on every (re)connect: subscribe with a fresh timestamp and signature; the stream is trusted
  (``StreamStatus("user", True, "subscribed"|"resubscribed")``) only once the venue confirms;
* on disconnect: ``StreamStatus("user", False, reason)``; reconnect with back-off, resubscribe;
* on ``eventStreamTerminated``: untrusted, resubscribe on the same connection;
* on ``-1021`` for the subscription: resynchronise the clock and retry;
* events are decoded into ``botcore.model`` values and put as ``UserEvent``. Events are not
  deduplicated here: the engine's position cache dedupes fills by trade id and the order tracker
  is monotonic, so a replayed event is harmless.

While the stream was untrusted the engine reconciles through REST (openOrders, account).
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import msgspec
import websocket

from botcore.events import EventSink, StreamStatus, UserEvent
from botcore_exchange_binance import decode
from botcore_exchange_binance.clock import ServerClock, now_ns
from botcore_exchange_binance.scrub import Secret, scrub
from botcore_exchange_binance.streams import DAY_S, ManagedSocket
from botcore_exchange_binance.wsapi import sign_params

log = logging.getLogger(__name__)

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class UserStream:
    """Keeps one user-data subscription alive and feeds decoded events to the sink.

    :param resync_clock: blocking callable that resynchronises ``clock`` with the venue (REST).
    :param on_report: optional observer called with every decoded event (the adapter uses it to
        learn order id -> client order id).
    """

    def __init__(
        self,
        ws_api_url: str,
        api_key: Secret,
        api_secret: Secret,
        clock: ServerClock,
        sink: EventSink,
        *,
        resync_clock: Callable[[], None] | None = None,
        on_report: Callable[[Any], None] | None = None,
        recv_window_ms: int = 5000,
        max_session_s: float = DAY_S - 1800.0,
        backoff_initial_s: float = 0.25,
        backoff_max_s: float = 30.0,
        ping_interval_s: float = 20.0,
        ping_timeout_s: float = 10.0,
        subscribe_timeout_s: float = 10.0,
        app_factory: Callable[..., Any] = websocket.WebSocketApp,
    ) -> None:
        self._key = api_key
        self._secret = api_secret
        self.clock = clock
        self._sink = sink
        self._resync_clock = resync_clock
        self._on_report = on_report
        self.recv_window_ms = recv_window_ms
        self.subscribe_timeout_s = subscribe_timeout_s
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._sub_request: str | None = None
        self._sub_sent_ns = 0
        self._subscribed_once = False
        self._retries_1021 = 0
        self.subscription_id: int | None = None
        self.trusted = False
        self.events = 0
        self.subscriptions = 0
        self.socket = ManagedSocket(
            "user",
            ws_api_url,
            on_open=self._on_open,
            on_frame=self._on_frame,
            on_down=self._on_down,
            stall_timeout_s=None,  # silence is normal on a user stream; pings detect a dead peer
            max_session_s=max_session_s,
            backoff_initial_s=backoff_initial_s,
            backoff_max_s=backoff_max_s,
            ping_interval_s=ping_interval_s,
            ping_timeout_s=ping_timeout_s,
            app_factory=app_factory,
        )
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"UserStream(trusted={self.trusted}, subscription={self.subscription_id})"

    def start(self) -> None:
        self.socket.start()
        self._watcher = threading.Thread(target=self._watch, name="ws-user-subscribe-watch", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._watch_stop.set()
        self.socket.stop()
        if self._watcher is not None:
            self._watcher.join(2.0)

    # --- subscription ---------------------------------------------------------------------------
    def _subscribe(self) -> None:
        rid = f"sub-{next(self._ids)}"
        params = sign_params({}, self._key, self._secret, self.clock.now_ms(), self.recv_window_ms)
        frame = _encode({"id": rid, "method": "userDataStream.subscribe.signature", "params": params})
        with self._lock:
            self._sub_request = rid
            self._sub_sent_ns = now_ns()
        try:
            self.socket.send(frame)
        except Exception as exc:
            log.info("user stream: subscribe not sent (%s)", scrub(exc))

    def _untrust(self, reason: str) -> None:
        self.trusted = False
        self.subscription_id = None
        self._sink.put(StreamStatus("user", False, reason, now_ns()))

    def _on_open(self, first: bool) -> None:
        self._retries_1021 = 0
        self._subscribe()

    def _on_down(self, reason: str) -> None:
        with self._lock:
            self._sub_request = None
        self._untrust(reason)

    def _on_subscribe_answer(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._sub_request = None
        status = int(msg.get("status", 0) or 0)
        if status == 200:
            result = msg.get("result") or {}
            self.subscription_id = result.get("subscriptionId")
            self.trusted = True
            self.subscriptions += 1
            reason = "resubscribed" if self._subscribed_once else "subscribed"
            self._subscribed_once = True
            self._retries_1021 = 0
            self._sink.put(StreamStatus("user", True, reason, now_ns()))
            return
        err = msg.get("error") or {}
        code = int(err.get("code", 0) or 0)
        log.warning("user stream: subscribe rejected: %s %s", code, scrub(err.get("msg", "")))
        if code == -1021 and self._resync_clock is not None and self._retries_1021 < 3:
            self._retries_1021 += 1
            try:
                self._resync_clock()
            except Exception as exc:
                log.warning("user stream: clock resync failed: %s", scrub(exc))
            self._subscribe()
            return
        # Anything else (bad key, rate limit): drop the connection; the runner backs off.
        self.socket.force_close(f"subscribe rejected ({code})")

    def _watch(self) -> None:
        """Re-send a subscription that got no answer in time (lost request)."""
        while not self._watch_stop.wait(0.5):
            with self._lock:
                pending = self._sub_request is not None and (
                    (now_ns() - self._sub_sent_ns) / 1e9 > self.subscribe_timeout_s
                )
            if pending and self.socket.is_open:
                self.socket.force_close("subscribe timed out")

    # --- frames -----------------------------------------------------------------------------------
    def _on_frame(self, raw: bytes, recv_ns: int) -> None:
        try:
            msg = _decode(raw)
        except msgspec.DecodeError:
            log.warning("user stream: undecodable frame dropped")
            return
        if not isinstance(msg, dict):
            return
        event = msg.get("event")
        if isinstance(event, dict):
            self._on_event(event, recv_ns)
            return
        if "e" in msg:  # a bare event (legacy listenKey-style delivery)
            self._on_event(msg, recv_ns)
            return
        rid = msg.get("id")
        if rid is not None and rid == self._sub_request:
            self._on_subscribe_answer(msg)

    def _on_event(self, event: dict[str, Any], recv_ns: int) -> None:
        etype = event.get("e")
        if etype == "eventStreamTerminated":
            self._untrust("user stream terminated")
            self._subscribe()
            return
        if etype == "serverShutdown":
            self.socket.force_close("serverShutdown")
            return
        try:
            decoded = decode.user_event(event)
        except (KeyError, ValueError, TypeError, ArithmeticError) as exc:
            log.warning("user stream: bad %s event dropped (%s)", etype, exc)
            return
        if decoded is None:
            return
        self.events += 1
        if self._on_report is not None:
            self._on_report(decoded)
        self._sink.put(UserEvent(decoded, recv_ns))
