"""Request parameters, API keys, HMAC signatures and timestamp windows, the way Binance checks them.

Binance signs the *raw* bytes a client sent (query string concatenated with the form body, minus the
``signature`` pair), so everything here works on raw strings and never on re-encoded parameters:
re-encoding would make a correct client look wrong (BINANCE_PROTOCOL.md 2.1-2.3).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl, unquote, unquote_plus

from botcore_exchange_paper.errors import BinanceError

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
# Printable ASCII without spaces: real keys are 64 alphanumerics, but configured paper keys may
# contain '-' or '_'; anything else (empty, whitespace, control chars, absurd length) is "format invalid".
_API_KEY_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,20}$")
_RECV_WINDOW_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,3})?$")

MSG_DUPLICATE = "Duplicate values for a parameter detected."
MSG_AHEAD = "Timestamp for this request was 1000ms ahead of the server's time."
MSG_OUTSIDE = "Timestamp for this request is outside of the recvWindow."
MSG_BAD_SIGNATURE = "Signature for this request is not valid."
MSG_KEY_FORMAT = "API-key format invalid."
MSG_KEY_REJECTED = "Invalid API-key, IP, or permissions for action."


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def parse_pairs(raw: str) -> dict[str, str]:
    """Decode one raw ``a=1&b=2`` string; a name given twice in the same place is -1101."""
    out: dict[str, str] = {}
    if not raw:
        return out
    for name, value in parse_qsl(raw, keep_blank_values=True):
        if name in out:
            raise BinanceError(-1101, MSG_DUPLICATE)
        out[name] = value
    return out


def merge_params(query_raw: str, body_raw: str) -> dict[str, str]:
    """Parameters from the raw query and the raw form body; the query wins on duplicates (Binance rule)."""
    params = parse_pairs(body_raw)
    params.update(parse_pairs(query_raw))
    return params


def _strip_signature(raw: str) -> tuple[str, str | None]:
    """Remove every ``signature=`` pair from a raw string; return (rest, last signature value)."""
    if "signature=" not in raw:
        return raw, None
    kept: list[str] = []
    sig: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            sig = unquote(part[10:])
        else:
            kept.append(part)
    return "&".join(kept), sig


def _hex_hmac(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def rest_signature_ok(secret: str, query_raw: str, body_raw: str) -> tuple[bool, bool]:
    """Check a REST HMAC signature; return (signature present, valid).

    Accepted payloads, in order: ``query + body`` exactly as the docs define it, ``query & body``
    (harmless leniency for clients that split params), and the percent-decoded forms of both (clients
    such as python-binance sign unencoded values and let ``requests`` encode them). Hex comparison is
    case-insensitive, as on Binance.
    """
    q, sig_q = _strip_signature(query_raw)
    b, sig_b = _strip_signature(body_raw)
    sig = sig_q if sig_q is not None else sig_b
    if not sig:
        return False, False
    sig = sig.strip().lower()
    candidates = [q + b]
    if q and b:
        candidates.append(q + "&" + b)
    decoded = [unquote(c) for c in candidates] + [unquote_plus(c) for c in candidates]
    candidates.extend(d for d in decoded if d not in candidates)
    for payload in candidates:
        if hmac.compare_digest(_hex_hmac(secret, payload), sig):
            return True, True
    return True, False


def ws_payload(params: Mapping[str, object]) -> str:
    """WebSocket API signature payload: every param except ``signature``, sorted by name, ``k=v&...``."""
    return "&".join(f"{k}={ws_value(params[k])}" for k in sorted(params) if k != "signature")


def ws_value(value: object) -> str:
    """A WS API JSON param as the string a client signed (JSON ``true`` is signed as ``true``)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def ws_signature_ok(secret: str, params: Mapping[str, object]) -> bool:
    sig = params.get("signature")
    if not isinstance(sig, str) or not sig:
        return False
    return hmac.compare_digest(_hex_hmac(secret, ws_payload(params)), sig.strip().lower())


def check_api_key_format(api_key: str | None) -> str:
    """Return the key or raise -2014 (HTTP 401) when it is missing or malformed."""
    if not api_key or not _API_KEY_RE.match(api_key):
        raise BinanceError(-2014, MSG_KEY_FORMAT, http_status=401)
    return api_key


def key_rejected() -> BinanceError:
    return BinanceError(-2015, MSG_KEY_REJECTED, http_status=401)


def check_timestamp(params: Mapping[str, object], server_now_ms: int) -> None:
    """Enforce ``timestamp`` and ``recvWindow`` exactly as Binance does (both failures are -1021).

    ``timestamp`` may be milliseconds or microseconds (16+ digits); ``recvWindow`` defaults to 5000,
    may carry up to 3 decimals and must not exceed 60000.
    """
    raw_ts = params.get("timestamp")
    if raw_ts is None or raw_ts == "":
        raise mandatory("timestamp")
    ts_text = ws_value(raw_ts)
    if not _TIMESTAMP_RE.match(ts_text):
        raise BinanceError(
            -1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'."
        )
    ts = Decimal(ts_text)
    if len(ts_text) >= 16:  # microseconds
        ts = ts / 1000
    raw_rw = params.get("recvWindow")
    if raw_rw is None or raw_rw == "":
        recv_window = Decimal(DEFAULT_RECV_WINDOW_MS)
    else:
        rw_text = ws_value(raw_rw)
        if not _RECV_WINDOW_RE.match(rw_text):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'recvWindow'; legal range is '^[0-9]{1,20}(\\.[0-9]{1,3})?$'.",
            )
        try:
            recv_window = Decimal(rw_text)
        except InvalidOperation as exc:  # pragma: no cover - guarded by the regex
            raise mandatory("recvWindow") from exc
        if recv_window > MAX_RECV_WINDOW_MS:
            raise BinanceError(
                -1102, f"'recvWindow' contains unexpected value. Cannot be greater than {MAX_RECV_WINDOW_MS}."
            )
    if ts >= server_now_ms + 1000:
        raise BinanceError(-1021, MSG_AHEAD)
    if server_now_ms - ts > recv_window:
        raise BinanceError(-1021, MSG_OUTSIDE)
