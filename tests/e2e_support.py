"""Helpers shared by the end-to-end tests (importable from any test: tests/ is on the path through
its conftest).

- ``wait``: poll a condition until it holds (an ``AssertionError`` from it counts as "not yet").
- ``Proc``: a child process (``botcore run``, ``botcore paper serve``) with its output collected.
- ``PaperBot``: the whole bot in this process (real Binance adapter, engine, strategies, risk
  chain) against an ``EmbeddedPaper`` whose recorded market a thread steps.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botcore_exchange_binance import plugin as binance_plugin
from botcore_exchange_paper.embedded import EmbeddedPaper
from botcore_risk_basic import plugin as risk_plugin
from botcore_strategy_marketmaker import plugin as mm_plugin

from botcore.app import build_risk_chain, build_strategies
from botcore.config import config_from_dict
from botcore.engine import Engine
from botcore.plugins import Hooks, collect_registry, get_plugin_manager


def wait(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """The first truthy value of ``pred()`` within ``timeout`` s; fails with the last one seen."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = pred()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached in {timeout}s (last: {last!r})")


class Proc:
    """A child process whose merged stdout/stderr is collected line by line on a thread."""

    def __init__(self, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.p = subprocess.Popen(
            cmd,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float) -> str:
        """The first output line satisfying ``predicate``; fails with the output so far."""
        end = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < end:
            lines = self.lines[:]
            for line in lines[seen:]:
                if predicate(line):
                    return line
            seen = len(lines)
            if self.p.poll() is not None and len(self.lines) == seen:
                break
            time.sleep(0.02)
        raise AssertionError(f"no such line within {timeout}s (exit {self.p.poll()}):\n{self.text[-4000:]}")

    def wait_line(self, needle: str, timeout: float) -> str:
        """The first output line containing ``needle``."""
        return self.wait_for(lambda line: needle in line, timeout)

    def finish(self, timeout: float) -> int:
        code = self.p.wait(timeout)
        self._reader.join(5)
        return code

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)


class PaperBot:
    """The bot wired like ``botcore run`` (minus jobs, journal and signals) against ``paper``.

    ``config`` is a bot config mapping (exchange ``binance`` in paper mode, strategies, risk);
    the marketmaker, basic risk and Binance plugins are loaded, plus ``plugins``. A thread replays
    the recording ``step`` events at a time while ``market_on`` is set.
    """

    def __init__(
        self,
        paper: EmbeddedPaper,
        config: dict[str, Any],
        run_id: str,
        plugins: Sequence[Any] = (),
        step: int = 5,
    ) -> None:
        self.paper = paper
        self.step = step
        cfg = config_from_dict(config)
        symbols = list(cfg.exchange.symbols)
        pm = get_plugin_manager(load_entrypoints=False, extra=[binance_plugin, mm_plugin, risk_plugin, *plugins])
        registry = collect_registry(pm)
        self.adapter = registry.exchanges["binance"](cfg, paper.endpoints())
        self.symbols = symbols
        instruments = self.adapter.exchange_info(symbols)
        self.strategies = build_strategies(cfg, registry, instruments)
        risk = build_risk_chain(cfg, registry)
        self.engine = Engine(instruments, self.strategies, risk, adapter=self.adapter, hooks=Hooks(pm), run_id=run_id)
        self.engine.load_snapshot(self.adapter.account_snapshot())
        self.market_on = threading.Event()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, daemon=True)

    def _tick(self) -> None:
        """Replay the recording in small steps (fast, but slow enough for the bot to react)."""
        while not self._stop.is_set():
            if self.market_on.wait(0.05):
                self.paper.step(self.step)
                time.sleep(0.004)

    def start(self) -> None:
        self.engine.start()
        self.adapter.start(self.engine, self.symbols)
        self._ticker.start()
        self.market_on.set()

    def stop(self) -> None:
        self._stop.set()
        self._ticker.join(2)
        self.engine.stop("test done")
        self.engine.join(15)
        self.adapter.stop()
