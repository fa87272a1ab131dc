"""The paper exchange as a child process (``child.py``): start, progress, stop, failure, the hook."""

from __future__ import annotations

import json
import time
import urllib.request
from decimal import Decimal

import pytest
from botcore_exchange_paper import plugin
from botcore_exchange_paper.child import ChildPaper, start_child

from botcore.replay import shipped_recording

LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy


def test_child_serves_reports_progress_and_stops_when_closed() -> None:
    paper = start_child(
        {"synthetic": True, "symbols": ["BTCUSDT"], "speed": 0, "balances": {"USDT": Decimal("5.5")}}
    )
    try:
        assert isinstance(paper, ChildPaper) and paper.api_secret not in repr(paper)
        with LOOPBACK.open(paper.rest_url + "/v3/ping", timeout=5) as answer:
            assert json.loads(answer.read()) == {}
        first = paper.progress()
        assert first["done"] is False and "exited" not in first
        assert paper.progress()["events"] >= first["events"] > 0
        account = paper.snapshot()["accounts"][0]
        assert account["api_key"] == paper.api_key
        assert {b["asset"]: b["free"] for b in account["balances"]}["USDT"] == "5.50000000"
        ep = paper.endpoints()
        assert ep.done is not None and ep.progress is not None and ep.close is not None
    finally:
        paper.close()
    assert paper.proc.returncode == 0  # it stopped on its own when the pipe closed
    after = paper.progress()
    assert after["done"] is True and after["exited"] == 0
    paper.close()  # idempotent


def test_replay_progress_counts_market_time_and_ends() -> None:
    paper = start_child({"speed": 0, "data": [str(shipped_recording()[0])]})
    try:
        end = time.monotonic() + 60
        while not paper.done() and time.monotonic() < end:
            time.sleep(0.1)
        info = paper.progress()
        assert info["done"] is True and "exited" not in info
        # the 0808 file spans 23:54:13 -> 23:59:59 UTC of recorded market
        assert 300.0 < info["elapsed_s"] < 400.0
    finally:
        paper.close()


def test_a_child_that_cannot_start_is_reported(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError, match="exited with code 2"):
        start_child({"speed": 0, "nonsense": 1})
    assert "nonsense" in capfd.readouterr().err  # its own message, on the shared stderr


def test_the_hook_validates_in_the_parent_and_knows_in_process() -> None:
    base = {"exchange": {"mode": "paper", "symbols": ["BTCUSDT"]}}
    with pytest.raises(ValueError, match="unknown key 'nope'"):
        plugin.botcore_start_venue({**base, "paper": {"speed": 0, "options": {"nope": 1}}})
    with pytest.raises(ValueError, match="in_process: expected true or false"):
        plugin.botcore_start_venue({**base, "paper": {"speed": 0, "options": {"in_process": "yes"}}})
    ep = plugin.botcore_start_venue({**base, "paper": {"speed": 0, "options": {"in_process": True}}})
    assert ep is not None and ep.close is not None
    try:
        assert ep.close.__self__.__class__.__name__ == "EmbeddedPaper"  # type: ignore[attr-defined]
        assert ep.progress is not None and ep.progress()["events"] > 0
    finally:
        ep.close()
