"""The main job as a user meets it: ``botcore run`` in its own process, stopped by a signal or by the
end of the replay, against the paper exchange in another process.

Each test starts real processes (``python -m botcore run``, the paper exchange as the run's child
or as ``python -m botcore_exchange_paper serve``) on loopback ports chosen at run time, trades
on the shipped BTCUSDT recording, and judges the outcome the way a user would: the exit code,
the printed summary, the journal, and what the exchange still holds.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import sqlite3
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from e2e_support import Proc

from botcore.journal import TERMINAL_STATUSES
from botcore.replay import shipped_recording

pytestmark = pytest.mark.timeout(120)

STRATEGY_AND_RISK = """
strategies:
  - name: mm
    type: marketmaker
    params:
      amount: "0.002"
      bid_distance: {ticks: 0}
      ask_distance: {ticks: 0}
      post_only: true
      min_requote_interval: 0.2
      fill_delay: 300ms
      max_position: "0.02"
risk:
  checks:
    - {type: max_order_notional, params: {max_notional: "500"}}
    - {type: max_position, params: {max_position: "0.03"}}
    - {type: order_rate, params: {per_second: 12, per_10s: 90}}
schedules:
  - {name: light-reconcile, job: reconcile_light, every: 2s}
"""

LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via $http_proxy


def _bot(config: Path, cwd: Path) -> Proc:
    return Proc([sys.executable, "-m", "botcore", "run", str(config)], cwd)


def _trading(line: str) -> bool:
    """A status line with quotes out and at least one live order: there is something to cancel."""
    m = re.search(r"quotes=(\d+) .*live=(\d+)", line)
    return bool(m) and int(m.group(1)) > 0 and int(m.group(2)) > 0


def _paper_children(pid: int) -> list[int]:
    """Pids of paper-exchange processes whose parent is ``pid`` (read from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"botcore_exchange_paper" in cmdline:
            out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _journal_run(path: Path) -> tuple[tuple[object, ...], dict[str, int]]:
    """(last run's ended_ms, exit_reason), and its orders counted by status."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        run_id, ended, reason = conn.execute(
            "SELECT id, ended_ms, exit_reason FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        statuses = dict(
            conn.execute(
                "SELECT status, COUNT(*) FROM orders WHERE run = ? GROUP BY status", (run_id,)
            ).fetchall()
        )
    finally:
        conn.close()
    return (ended, reason), statuses


def _assert_clean_stop(bot: Proc, code: int, reason: str, journal: Path) -> None:
    text = bot.text
    assert code == 0, text[-4000:]
    assert re.search(r"cancelling [1-9]\d* live orders", text), text[-4000:]
    assert f"botcore: stopped ({reason})" in text
    assert re.search(r"^PnL BTCUSDT: .* = net -?\d+\.\d{4} USDT$", text, re.M), text[-3000:]
    assert f"journal: {journal}" in text and f"botcore report {journal} --png" in text
    assert "may still be open" not in text
    (ended, exit_reason), statuses = _journal_run(journal)
    assert ended is not None and exit_reason == reason
    assert statuses and set(statuses) <= set(TERMINAL_STATUSES), statuses


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_main_job_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    """The paper exchange as the run's child: a signal cancels, closes the journal, summarises; the child goes."""
    journal = tmp_path / "main.sqlite"
    config = tmp_path / "main.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            run: {{name: main, journal: {journal}, log_level: INFO, status_every: 0.2s}}
            exchange: {{name: binance, mode: paper, symbols: [BTCUSDT]}}
            paper: {{speed: 4, balances: {{USDT: "10000", BTC: "0.2"}}}}
            """
        )
        + STRATEGY_AND_RISK
    )
    bot = _bot(config, tmp_path)
    try:
        bot.wait_for(_trading, timeout=60)
        children = _paper_children(bot.p.pid)
        assert len(children) == 1, bot.text[-2000:]
        bot.p.send_signal(sig)
        code = bot.finish(timeout=60)
    finally:
        bot.kill()
    _assert_clean_stop(bot, code, sig.name, journal)
    assert _wait_gone(children[0], 10), "the paper exchange outlived the run"


def test_separate_exchange_has_no_open_orders_after_sigint(tmp_path: Path) -> None:
    """Against ``paper serve`` in its own process (the testnet shape: URLs and keys from the
    environment), SIGINT leaves no order open on the exchange, which the test asks directly."""
    server = Proc(
        [sys.executable, "-m", "botcore_exchange_paper", "serve", "--speed", "4", "--port", "0"]
        + ["--balance", "USDT=10000", "--balance", "BTC=0.2"],
        tmp_path,
    )
    try:
        values: dict[str, str] = {}
        for name in ("rest_url", "stream_url", "ws_api_url", "api_key", "api_secret"):
            line = server.wait_for(lambda s, n=name: s.startswith(f"{n}: "), timeout=30)  # type: ignore[misc]
            values[name] = line.split(": ", 1)[1].strip()
        journal = tmp_path / "sep.sqlite"
        config = tmp_path / "sep.yaml"
        config.write_text(
            textwrap.dedent(
                f"""
                run: {{name: sep, journal: {journal}, log_level: INFO, status_every: 0.2s}}
                exchange:
                  name: binance
                  mode: testnet
                  symbols: [BTCUSDT]
                  api_key: $env:SEP_KEY
                  api_secret: $env:SEP_SECRET
                  rest_url: {values["rest_url"]}
                  stream_url: {values["stream_url"]}
                  ws_api_url: {values["ws_api_url"]}
                """
            )
            + STRATEGY_AND_RISK
        )
        bot = Proc(
            [sys.executable, "-m", "botcore", "run", str(config)],
            tmp_path,
            env={"SEP_KEY": values["api_key"], "SEP_SECRET": values["api_secret"]},
        )
        try:
            bot.wait_for(_trading, timeout=60)
            bot.p.send_signal(signal.SIGINT)
            code = bot.finish(timeout=60)
        finally:
            bot.kill()
        _assert_clean_stop(bot, code, "SIGINT", journal)
        base = values["rest_url"].rsplit("/api", 1)[0]
        with LOOPBACK.open(f"{base}/paper/snapshot", timeout=5) as answer:
            snapshot = json.loads(answer.read())
        assert [a["open_orders"] for a in snapshot["accounts"]] == [[]]
    finally:
        server.p.send_signal(signal.SIGTERM)
        assert server.finish(timeout=20) == 0
        server.kill()


def test_run_ends_by_itself_when_the_replay_finishes(tmp_path: Path) -> None:
    """A short recording: the run stops with "replay finished", exit 0, and says how much market it covered."""
    data = tmp_path / "btcusdt_20240808.gz"
    with gzip.open(shipped_recording()[0], "rt") as src, gzip.open(data, "wt") as dst:
        for i, line in enumerate(src):
            if i >= 2500:  # about 20 s of recorded market, first depth snapshot included
                break
            dst.write(line)
    journal = tmp_path / "end.sqlite"
    config = tmp_path / "end.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            run: {{name: end, journal: {journal}, log_level: INFO, status_every: 0.5s}}
            exchange: {{name: binance, mode: paper, symbols: [BTCUSDT]}}
            paper: {{speed: 8, data: [{data}], balances: {{USDT: "10000", BTC: "0.2"}}}}
            """
        )
        + STRATEGY_AND_RISK
    )
    bot = _bot(config, tmp_path)
    try:
        code = bot.finish(timeout=90)
    finally:
        bot.kill()
    text = bot.text
    assert code == 0, text[-4000:]
    assert "botcore: stopped (replay finished)" in text
    covered = re.search(r"(\d+\.\d)s of recorded market replayed to its end", text)
    assert covered and 10.0 < float(covered.group(1)) < 40.0, text[-2000:]
    assert re.search(r"\] replay +\d+\.\ds ", text), "status lines show the replay time"
    (ended, reason), statuses = _journal_run(journal)
    assert ended is not None and reason == "replay finished"
    assert set(statuses) <= set(TERMINAL_STATUSES), statuses


def test_the_paper_exchange_dies_with_a_killed_run(tmp_path: Path) -> None:
    """SIGKILL leaves no cleanup to the run: the child exchange notices its stdin pipe close and exits."""
    config = tmp_path / "kill.yaml"
    config.write_text(
        textwrap.dedent(
            """
            run: {name: kill, journal: null, log_level: INFO, status_every: 0.2s}
            exchange: {name: binance, mode: paper, symbols: [BTCUSDT]}
            paper: {speed: 1}
            """
        )
        + STRATEGY_AND_RISK
    )
    bot = _bot(config, tmp_path)
    try:
        bot.wait_for(lambda s: "events=" in s, timeout=60)
        children = _paper_children(bot.p.pid)
        assert len(children) == 1
        bot.p.send_signal(signal.SIGKILL)
        bot.finish(timeout=10)
        assert _wait_gone(children[0], 10), "the paper exchange outlived its killed parent"
    finally:
        bot.kill()


def test_a_signal_while_the_run_closes_is_acknowledged_not_raised() -> None:
    """After the engine stopped, the run closes adapter, venue and journal: a second Ctrl-C must not
    cut that short (an unclosed journal reads as a crashed run); the old handlers come back at the end."""
    from botcore import app

    before = signal.getsignal(signal.SIGINT)
    stops: list[str] = []
    out = io.StringIO()
    with app._Signals(stops.append, out) as signals:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)  # the handler runs on the main thread at its next bytecode
        assert stops == ["SIGINT"] and signals.received == "SIGINT"
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.01)
    assert "SIGTERM: closing the run" in out.getvalue() and stops == ["SIGINT"]
    signals.restore()
    assert signal.getsignal(signal.SIGINT) is before
