"""Embedding, the pluggy hooks and the ``botcore paper serve`` command."""

from __future__ import annotations

import importlib.metadata as md
import os
import signal
import socket
import subprocess
import sys
import threading
from decimal import Decimal

import pytest
import requests
from botcore_exchange_paper import plugin
from botcore_exchange_paper.embedded import EmbeddedPaper
from botcore_exchange_paper.errors import BinanceError
from botcore_exchange_paper.options import ServerOptions
from paper_support import KEY, SECRET, Rest, start_paper

from botcore.contracts import VenueEndpoints


def test_urls_endpoints_and_reprs_hide_the_secret(paper: EmbeddedPaper) -> None:
    assert paper.rest_url == f"http://127.0.0.1:{paper.port}/api"
    assert paper.base_url == f"http://127.0.0.1:{paper.port}"
    assert paper.stream_url == f"ws://127.0.0.1:{paper.port}/"
    assert paper.ws_api_url == f"ws://127.0.0.1:{paper.port}/ws-api/v3"
    assert (paper.api_key, paper.api_secret) == (KEY, SECRET)  # the first configured account
    ep = paper.endpoints()
    assert isinstance(ep, VenueEndpoints)
    assert (ep.rest_url, ep.stream_url, ep.ws_api_url, ep.api_key, ep.api_secret) == (
        paper.rest_url, paper.stream_url, paper.ws_api_url, KEY, SECRET)  # fmt: skip
    assert ep.close is not None
    assert SECRET not in repr(paper) and SECRET not in repr(ep)


def test_call_runs_on_the_loop_thread_and_propagates_errors(paper: EmbeddedPaper) -> None:
    names = paper.call(lambda: threading.current_thread().name)
    assert names == "paper-exchange"
    depth = paper.venue_call(lambda v: v.depth("BTCUSDT", 3))
    assert len(depth["bids"]) == 3
    with pytest.raises(BinanceError) as err:
        paper.venue_call(lambda v: v.depth("NOPENOPE", 3))
    assert err.value.code == -1121
    assert paper.faults.state()["clock_skew_ms"] == 0


def test_close_is_idempotent_and_frees_the_port() -> None:
    p = start_paper(warmup=0)
    port = p.port
    assert Rest(p).public("ping").status_code == 200
    p.close()
    p.close()
    with pytest.raises(RuntimeError):
        p.status()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_embedded_market_runs_by_itself() -> None:
    from botcore_exchange_paper.embedded import start_embedded
    from paper_support import make_config

    with start_embedded(make_config(speed=0)) as p:  # run_market=True: replays the whole recording
        assert requests.post(p.base_url + "/paper/start_market", timeout=5).json() == {"started": False}
        assert p.wait_done(timeout=120)
        status = requests.get(p.base_url + "/paper/status", timeout=5).json()
        assert status["done"] is True and status["events_processed"] > 10_000
    with start_embedded(make_config(speed=0), run_market=False) as p:
        primed = p.status()["events_processed"]  # only up to the first depth snapshot
        assert primed < 100 and not p.status()["done"]
        assert p.start_market() is True
        assert p.wait_done(timeout=120) and p.status()["events_processed"] > 10_000


def test_server_options_reject_unknown_keys() -> None:
    with pytest.raises(ValueError, match="ping_interval"):
        ServerOptions.from_dict({"ping_interval": 3})
    with pytest.raises(ValueError, match="legacy_user_stream"):
        ServerOptions.from_dict({"legacy_user_stream": "maybe"})


# -- plugin hooks ----------------------------------------------------------------------------------


def test_entry_point_is_registered() -> None:
    eps = {ep.name: ep.value for ep in md.entry_points(group="botcore")}
    assert eps.get("paper") == "botcore_exchange_paper.plugin"


def test_start_venue_hook_from_the_yaml_block() -> None:
    assert plugin.botcore_start_venue({"exchange": {"mode": "testnet"}}) is None
    config = {
        "exchange": {"mode": "paper", "symbols": ["BTCUSDT"]},
        "paper": {
            "speed": 0,
            "port": 0,
            "balances": {"USDT": "1234.5", "BTC": "0.25"},
            "options": {"ping_interval_s": 5},
            "faults": {"clock_skew": {"ms": 0}},
        },  # fmt: skip
    }
    ep = plugin.botcore_start_venue(config)
    assert isinstance(ep, VenueEndpoints) and ep.close is not None
    try:
        rest = Rest.__new__(Rest)
        rest.base, rest.key, rest.secret, rest.s = (
            ep.rest_url + "/v3/",
            ep.api_key,
            ep.api_secret,
            requests.Session(),
        )
        info = rest.signed("GET", "account").json()
        got = {b["asset"]: b["free"] for b in info["balances"] if b["asset"] in ("USDT", "BTC")}
        assert got == {"USDT": "1234.50000000", "BTC": "0.25000000"}
        assert len(ep.api_key) == 64 and ep.api_key.isalnum()
    finally:
        ep.close()


def test_paper_block_translation_from_the_host_config_model(tmp_path: object) -> None:
    from botcore.config import PaperConfig as HostPaperConfig
    from botcore.replay import shipped_recording

    block = HostPaperConfig(data=[shipped_recording()[0]], speed=3, port=18555, balances={"usdt": "10"},
                            fill={"queue_model": "risk_averse"})  # fmt: skip
    cfg, port = plugin.paper_config_from_block(block)
    assert port == 18555 and cfg.speed == 3 and cfg.fill.queue_model == "risk_averse"
    assert cfg.recordings == [shipped_recording()[0]]
    assert cfg.accounts[0].balances == {"USDT": Decimal("10")}
    with pytest.raises(ValueError, match="nonsense"):
        plugin.paper_config_from_block({"nonsense": 1})


def test_register_commands_adds_paper_serve() -> None:
    import argparse

    registered: dict[str, object] = {}
    plugin.botcore_register_commands(lambda name, setup: registered.__setitem__(name, setup))
    parser = argparse.ArgumentParser()
    run = registered["paper"](parser)  # type: ignore[operator]
    args = parser.parse_args(["serve", "--speed", "0", "--port", "0", "--synthetic", "--seed", "7",
                              "--balance", "USDT=5", "--faults", '{"clock_skew": 10}'])  # fmt: skip
    assert (
        callable(run)
        and args.paper_command == "serve"
        and args.seed == 7
        and args.balance == [("USDT", Decimal(5))]
    )


def test_cli_serve_prints_urls_and_stops_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "botcore", "paper", "serve", "--speed", "0", "--synthetic", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(5)]
        values = dict(line.split(": ", 1) for line in lines)
        assert list(values) == ["rest_url", "stream_url", "ws_api_url", "api_key", "api_secret"]
        assert requests.get(values["rest_url"] + "/v3/ping", timeout=5).json() == {}
        rest = Rest.__new__(Rest)
        rest.base, rest.key, rest.secret = (
            values["rest_url"] + "/v3/",
            values["api_key"],
            values["api_secret"],
        )
        rest.s = requests.Session()
        assert rest.signed("GET", "account").status_code == 200  # the printed secret is the real one
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_start_venue_hook_with_the_main_job_config() -> None:
    """The validated BotConfig of config/paper.yaml starts a working exchange."""
    from pathlib import Path

    from botcore.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[2] / "config" / "paper.yaml")
    assert cfg.exchange.mode == "paper"
    ep = plugin.botcore_start_venue(cfg)
    assert ep is not None and ep.close is not None
    try:
        assert requests.get(ep.rest_url + "/v3/ping", timeout=5).json() == {}
    finally:
        ep.close()
