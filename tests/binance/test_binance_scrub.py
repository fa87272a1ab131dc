"""Secrets and signatures never reach logs, reprs or exception messages."""

from __future__ import annotations

import logging

import pytest
import requests
from botcore_exchange_binance.errors import UnknownStatus, VenueError
from botcore_exchange_binance.scrub import Secret, install_log_filters, scrub

SECRET = "sEcReT0123456789abcdefSECRET"


def test_scrub_masks_signatures_keys_and_registered_secrets() -> None:
    Secret(SECRET)
    text = (
        f"GET /api/v3/account?recvWindow=5000&timestamp=1&signature=ab12cd34 "
        f'{{"apiKey": "KEY123456", "signature":"ffee00"}} X-MBX-APIKEY: KEY123456 and {SECRET}'
    )
    out = scrub(text)
    for leaked in ("ab12cd34", "ffee00", "KEY123456", SECRET):
        assert leaked not in out
    assert "recvWindow=5000" in out  # the rest stays readable


def test_secret_repr_never_reveals() -> None:
    s = Secret(SECRET)
    assert SECRET not in repr(s) and SECRET not in str(s) and SECRET not in f"{[s]}"
    assert s.reveal() == SECRET
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(s)


def test_exception_messages_are_scrubbed() -> None:
    Secret(SECRET)
    e = UnknownStatus(f"Max retries exceeded with url: /api/v3/order?signature=deadbeef ({SECRET})")
    assert "deadbeef" not in str(e) and SECRET not in str(e)
    v = VenueError(-1022, "Signature for this request is not valid. signature=abc")
    assert "abc" not in v.msg and "abc" not in str(v)


def test_urllib3_debug_lines_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    install_log_filters()
    log = logging.getLogger("urllib3.connectionpool")
    with caplog.at_level(logging.DEBUG):
        log.debug('%s://%s:%s "%s %s %s" %s %s', "http", "h", 1, "GET",
                  "/api/v3/account?timestamp=1&signature=0123abcd", "HTTP/1.1", 200, 10)
        try:
            raise requests.ConnectionError("url: /api/v3/order?signature=99aa")
        except requests.ConnectionError:
            logging.getLogger("websocket").exception("boom %s", SECRET)
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "0123abcd" not in text and "99aa" not in text and SECRET not in text
    assert "[signature redacted]" in text and "signature=" not in text
