"""Keep API secrets and signatures out of logs, reprs and exception messages.

python-binance, requests and urllib3 put signed query strings into URLs, exception messages and
DEBUG log lines (``urllib3.connectionpool`` logs every request line). Everything that may carry
them goes through ``scrub`` before it leaves the adapter, and a logging filter rewrites records
of the third-party loggers that are known to print request lines or frames.
"""

from __future__ import annotations

import logging
import re
import threading

MASK = "***"
SIG_MASK = "[signature redacted]"

# signature=<hex|base64|percent-encoded> in query strings and form bodies, and
# "signature": "<...>" in WebSocket API JSON.
_SIG_QUERY = re.compile(r"signature=[^&\s\"',)]*", re.IGNORECASE)
_SIG_JSON = re.compile(r"(['\"]signature['\"]\s*:\s*['\"])[^'\"]*", re.IGNORECASE)
_APIKEY_JSON = re.compile(r"(['\"]apiKey['\"]\s*:\s*['\"])[^'\"]*", re.IGNORECASE)
_APIKEY_HEADER = re.compile(r"(X-MBX-APIKEY['\"]?\s*[:=]\s*['\"]?)[^'\"\s,}]+", re.IGNORECASE)

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


class Secret:
    """A credential that never shows itself in ``repr``/``str`` (tracebacks with locals included)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        if value:
            register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:  # never pickle the value by accident
        raise TypeError("Secret cannot be pickled")


def register_secret(value: str) -> None:
    """Remember a literal value (API key, secret) that must be masked wherever it appears."""
    global _secrets
    if len(value) < 6:  # too short to mask without mangling ordinary text
        return
    with _lock:
        if value not in _secrets:
            _secrets = tuple(sorted((*_secrets, value), key=len, reverse=True))


def scrub(text: object) -> str:
    """``text`` as a string with every signature and registered secret masked."""
    s = text if isinstance(text, str) else str(text)
    if "ignature" in s or "IGNATURE" in s:
        s = _SIG_QUERY.sub(SIG_MASK, s)
        s = _SIG_JSON.sub(r"\1" + MASK, s)
    if "apiKey" in s or "APIKEY" in s.upper():
        s = _APIKEY_JSON.sub(r"\1" + MASK, s)
        s = _APIKEY_HEADER.sub(r"\1" + MASK, s)
    for secret in _secrets:
        if secret in s:
            s = s.replace(secret, MASK)
    return s


class ScrubFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with ``scrub`` before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template only
            message = str(record.msg)
        clean = scrub(message)
        if clean != message or record.args:
            record.msg = clean
            record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            import traceback

            record.exc_text = scrub("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


# Loggers known to print URLs, request bodies or frames. Filters attached to a logger only see
# records created on that logger, so every module logger is listed.
_NOISY_PREFIXES = ("urllib3", "requests", "websocket", "binance", "botcore_exchange_binance")
_KNOWN = (
    "urllib3",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.response",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "requests",
    "websocket",
    "binance",
    "binance.base_client",
    "binance.client",
    "botcore_exchange_binance",
)
_FILTER = ScrubFilter()
_installed: set[str] = set()


def install_log_filters() -> None:
    """Attach the scrubbing filter to every known and existing third-party logger (idempotent)."""
    names = set(_KNOWN)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(_NOISY_PREFIXES):
            names.add(name)
    with _lock:
        for name in names - _installed:
            logging.getLogger(name).addFilter(_FILTER)
            _installed.add(name)
