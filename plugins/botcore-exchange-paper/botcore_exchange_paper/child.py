"""The paper exchange in a child process: what ``botcore run`` uses for ``exchange.mode: paper``.

Why a process and not a thread: in one process the exchange (replay pacing, matching, JSON
encoding of every stream frame) and the bot's engine share one GIL, so every frame the exchange
sends delays the engine's reaction to the previous one. Out of process the bot sees the venue
the way it sees Binance: over loopback sockets only.

The child is ``python -m botcore_exchange_paper serve --block <paper block as JSON> --port N
--exit-with-stdin``. It prints its ``name: value`` lines (URLs, throwaway key and secret) on
stdout, which :func:`start_child` reads; it runs until its stdin pipe closes, so it stops when
:meth:`ChildPaper.close` closes the pipe and also when the parent dies for any reason (the kernel
closes the pipe). It ignores SIGINT and SIGTERM: a Ctrl-C in a terminal, or a service manager's
SIGTERM, reaches every process of the group, and the exchange must outlive the bot's last
cancels. ``done``/``progress`` read ``GET /paper/status``.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import IO, Any

from botcore.contracts import VenueEndpoints

log = logging.getLogger("botcore.paper")

_NAMES = ("rest_url", "stream_url", "ws_api_url", "api_key", "api_secret")
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Loopback only: never through an ``http_proxy`` from the environment (urllib's default)."""


def _jsonable(value: Any) -> Any:
    """The YAML block with Decimals and paths as strings (exact, never a binary float)."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (Decimal, PurePath)):
        return str(value)
    if hasattr(value, "get_secret_value"):  # a SecretStr from $env: in a free-form block
        return value.get_secret_value()
    return value


def progress_from_status(status: Mapping[str, Any]) -> dict[str, Any]:
    """The few values ``botcore run`` shows, from ``GET /paper/status``."""
    return {
        "elapsed_s": float(status.get("replay_elapsed_s", 0.0) or 0.0),
        "events": int(status.get("events_processed", 0) or 0),
        "done": bool(status.get("done") or status.get("market_done")),
    }


class ChildPaper:
    """Handle on a paper exchange running in a child process. ``close()`` (or ``with``) stops it."""

    def __init__(self, proc: subprocess.Popen[bytes], values: Mapping[str, str]) -> None:
        self.proc = proc
        self.rest_url = values["rest_url"]
        self.stream_url = values["stream_url"]
        self.ws_api_url = values["ws_api_url"]
        self.api_key = values["api_key"]
        self._api_secret = values["api_secret"]
        self.base_url = self.rest_url.rsplit("/api", 1)[0]
        self._last: dict[str, Any] = {"elapsed_s": 0.0, "events": 0, "done": False}
        self._closed = False

    def __repr__(self) -> str:
        return f"ChildPaper(pid={self.proc.pid}, rest_url={self.rest_url!r}, closed={self._closed})"

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

    # -- control endpoint ---------------------------------------------------------------------------
    def control(self, path: str, timeout: float = 2.0) -> Any:
        """``GET /paper/<path>`` (``status``, ``snapshot``, ``faults``) as decoded JSON."""
        with _DIRECT.open(f"{self.base_url}/paper/{path}", timeout=timeout) as answer:
            return json.loads(answer.read())

    def status(self, timeout: float = 2.0) -> dict[str, Any]:
        result: dict[str, Any] = self.control("status", timeout)
        return result

    def snapshot(self, timeout: float = 5.0) -> dict[str, Any]:
        result: dict[str, Any] = self.control("snapshot", timeout)
        return result

    def progress(self) -> dict[str, Any]:
        """Replay progress; ``done`` and ``exited`` (the exit code) once the process is gone."""
        code = self.proc.poll()
        if code is not None:
            return {**self._last, "done": True, "exited": code}
        try:
            self._last = progress_from_status(self.status())
        except (OSError, ValueError) as exc:  # busy or going away: keep the last answer
            log.debug("paper status unavailable: %s", exc)
        return dict(self._last)

    def done(self) -> bool:
        """True once the replay finished (or the exchange process exited)."""
        return bool(self.progress()["done"])

    # -- lifecycle ----------------------------------------------------------------------------------
    def close(self, timeout: float = 10.0) -> None:
        """Close the stdin pipe (the child's signal to stop), wait, then kill if it must. Idempotent."""
        if self._closed:
            return
        self._closed = True
        proc = self.proc
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("paper exchange (pid %d) did not stop in %.0fs; killing it", proc.pid, timeout)
            proc.kill()
            proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()

    def __enter__(self) -> ChildPaper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_lines(stream: IO[bytes], out: queue.Queue[str | None]) -> None:
    """Pass the child's stdout on line by line (None at EOF); drains it so it can never block."""
    try:
        for raw in stream:
            out.put(raw.decode("utf-8", "replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    out.put(None)


def start_child(
    block: Mapping[str, Any],
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    python: str | None = None,
    startup_timeout: float = 60.0,
) -> ChildPaper:
    """Start ``python -m botcore_exchange_paper serve`` with ``block`` (the ``paper:`` block).

    :raises RuntimeError: the child exited or printed nothing usable within ``startup_timeout``
        (its own error message is on stderr, which it shares with the parent).
    """
    cmd = [
        python or sys.executable,
        "-m",
        "botcore_exchange_paper",
        "serve",
        "--host",
        host,
        "--port",
        str(int(port)),
        "--exit-with-stdin",
        "--block",
        json.dumps(_jsonable(block)),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(
        target=_read_lines, args=(proc.stdout, lines), name="paper-child-out", daemon=True
    ).start()
    values: dict[str, str] = {}
    deadline = time.monotonic() + startup_timeout
    try:
        while len(values) < len(_NAMES):
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"the paper exchange printed no endpoints within {startup_timeout:g}s"
                ) from None
            if line is None:
                code = proc.wait(5)
                raise RuntimeError(
                    f"the paper exchange exited with code {code} before it was ready (see above)"
                )
            name, sep, value = line.partition(": ")
            if sep and name in _NAMES:
                values[name] = value
    except BaseException:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        raise
    return ChildPaper(proc, values)
