"""The command line: exit codes, ``botcore plugins``, ``check``/``run`` plumbing, plugin commands.

``botcore.app`` (the engine wiring) is replaced by a fake module in ``sys.modules`` wherever a
command would reach it, so these tests exercise only the CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import botcore
from botcore.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, main
from botcore.config import BotConfig
from botcore.plugins import ENV_LOAD, HANDOFF_PLUGIN, Registry

FAKE_EXCHANGE = '''
import argparse

from botcore import hookimpl


@hookimpl
def botcore_register_exchanges(register):
    register("fake", dict)


def _setup(parser):
    """Echo the argument (loose-file command)."""
    parser.add_argument("word")

    def run(args):
        print(f"echo {args.word}")
        return 0

    return run


@hookimpl
def botcore_register_commands(register):
    register("loose-echo", _setup)
'''

CONFIG = """\
exchange:
  name: fake
  symbols: [BTCUSDT]
strategies:
  - name: hold
    type: sample-hold
risk:
  checks:
    - type: sample-max-qty
      params: {max_qty: "1"}
schedules:
  - name: r
    job: nothing
    every: 5s
"""


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sample_plugin: Any, tmp_path: Path) -> Path:
    """Only the sample plugin from entry points, plus a loose plugin dir with a fake exchange."""
    monkeypatch.setenv(ENV_LOAD, "botcore-sample-plugin")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fake_exchange.py").write_text(FAKE_EXCHANGE)
    return plugins


def write(tmp_path: Path, text: str, name: str = "bot.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


class FakeApp(types.ModuleType):
    def __init__(self, result: Any = 0, with_check: bool = True) -> None:
        super().__init__("botcore.app")
        self.calls: list[tuple[str, BotConfig, Any, Any]] = []
        self.result = result
        if with_check:
            self.check = self._check

    def run(self, config: BotConfig, pm: Any, args: Any) -> int:
        self.calls.append(("run", config, pm, args))
        if isinstance(self.result, BaseException):
            raise self.result
        return int(self.result)

    def _check(self, config: BotConfig, pm: Any, args: Any) -> int:
        self.calls.append(("check", config, pm, args))
        print("first quotes OK")
        return int(self.result)


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> FakeApp:
    app = FakeApp()
    monkeypatch.setitem(sys.modules, "botcore.app", app)
    return app


# ---------------------------------------------------------------------------------------------
# Global options
# ---------------------------------------------------------------------------------------------


def test_version(capsys: Any) -> None:
    assert main(["--version"]) == EXIT_OK
    assert capsys.readouterr().out.strip() == f"botcore {botcore.__version__}"


def test_python_dash_m_botcore_exits_with_the_code() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "botcore", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"botcore {botcore.__version__}"
    env = {**os.environ, ENV_LOAD: ""}
    proc = subprocess.run(
        [sys.executable, "-m", "botcore"], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == EXIT_CONFIG and "COMMAND" in proc.stderr


def test_usage_errors_exit_2(env: Path, capsys: Any) -> None:
    assert main([]) == EXIT_CONFIG
    assert main(["nonsense"]) == EXIT_CONFIG
    assert main(["run"]) == EXIT_CONFIG
    assert main(["run", "x.yaml", "--duration", "soon"]) == EXIT_CONFIG
    assert "duration" in capsys.readouterr().err
    assert main(["--help"]) == EXIT_OK
    assert "sample-hello" in capsys.readouterr().out  # plugin commands appear in the help


def test_broken_plugin_exits_2_naming_plugin_and_hook(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    monkeypatch.setenv(ENV_LOAD, "")
    (tmp_path / "typo.py").write_text(
        "from botcore import hookimpl\n\n@hookimpl\ndef botcore_order_chek(order, context):\n    pass\n"
    )
    assert main(["--plugins-dir", str(tmp_path), "plugins"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "'typo'" in err and "botcore_order_chek" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# botcore plugins
# ---------------------------------------------------------------------------------------------


def test_plugins_lists_the_installed_sample(env: Path, sample_plugin: Any, capsys: Any) -> None:
    assert main(["plugins"]) == EXIT_OK
    [info] = json.loads(capsys.readouterr().out)
    assert info["name"] == "sample"
    assert (info["distribution"], info["version"]) == ("botcore-sample-plugin", sample_plugin.version)
    assert "botcore_register_strategies" in info["hooks"]


def test_plugins_all_dir_and_hook_filter(env: Path, capsys: Any) -> None:
    assert main(["--plugins-dir", str(env), "plugins", "--all"]) == EXIT_OK
    names = [p["name"] for p in json.loads(capsys.readouterr().out)]
    assert names == sorted(["sample", "fake_exchange", HANDOFF_PLUGIN])
    assert main(["--plugins-dir", str(env), "plugins", "--hook", "register_exchanges"]) == EXIT_OK
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == ["fake_exchange"]
    assert main(["--plugins-dir", str(env), "plugins", "--hook", "botcore_register_risk_checks"]) == EXIT_OK
    assert [p["name"] for p in json.loads(capsys.readouterr().out)] == ["sample"]
    assert main(["plugins", "--hook", "register_strategys"]) == EXIT_CONFIG
    assert "did you mean 'botcore_register_strategies'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Plugin sub-commands
# ---------------------------------------------------------------------------------------------


def test_plugin_subcommand_from_an_installed_distribution(env: Path, capsys: Any) -> None:
    assert main(["sample-hello", "--name", "tester"]) == EXIT_OK
    assert capsys.readouterr().out == "hello tester from botcore-sample-plugin 0.1.0\n"
    assert main(["sample-hello", "--exit-code", "3"]) == 3


def test_plugin_subcommand_from_a_loose_file(env: Path, capsys: Any) -> None:
    assert main(["--plugins-dir", str(env), "loose-echo", "hi"]) == EXIT_OK
    assert capsys.readouterr().out == "echo hi\n"


def test_plugin_subcommand_failures(env: Path, tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "more"
    bad.mkdir()
    (bad / "takeover.py").write_text(
        "from botcore import hookimpl\n\n@hookimpl\ndef botcore_register_commands(register):\n"
        "    register('run', lambda parser: (lambda args: 0))\n"
    )
    assert main(["--plugins-dir", str(bad), "plugins"]) == EXIT_CONFIG
    assert "'takeover' registers command 'run'" in capsys.readouterr().err
    (bad / "takeover.py").write_text(
        "from botcore import hookimpl\n\ndef boom(args):\n    raise RuntimeError('kaput')\n\n"
        "@hookimpl\ndef botcore_register_commands(register):\n    register('boom', lambda parser: boom)\n"
    )
    assert main(["--plugins-dir", str(bad), "boom"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "Traceback" in err and "kaput" in err


# ---------------------------------------------------------------------------------------------
# check
# ---------------------------------------------------------------------------------------------


def test_check_ok_prints_summary_and_calls_app_check(
    env: Path, tmp_path: Path, fake_app: FakeApp, capsys: Any
) -> None:
    path = write(tmp_path, CONFIG)
    # 'nothing' is no registered job (see the next test): make it one through another loose file.
    (env / "jobs.py").write_text(
        "from botcore import hookimpl\n\n@hookimpl\ndef botcore_register_jobs(register):\n"
        "    register('nothing', lambda handle, params: None)\n"
    )
    assert main(["--plugins-dir", str(env), "check", path]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith(f"config OK: {path}\n")
    assert "strategy: hold (sample-hold) on BTCUSDT" in out
    assert "risk check: sample-max-qty (sample-max-qty)" in out and "schedule: r (nothing) every 5s" in out
    assert "  plugins: fake_exchange, jobs, sample\n" in out
    assert out.rstrip().endswith("first quotes OK")
    [(what, config, pm, args)] = fake_app.calls
    assert what == "check" and config.exchange.name == "fake" and pm.get_plugin("sample") is not None
    assert isinstance(args.registry, Registry) and args.plugin_manager is pm
    fake_app.result = 1
    assert main(["--plugins-dir", str(env), "check", path]) == EXIT_FAILURE


def test_check_without_app_check_is_ok(env: Path, tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    path = write(tmp_path, CONFIG.split("schedules:")[0])
    monkeypatch.setitem(sys.modules, "botcore.app", FakeApp(with_check=False))
    assert main(["--plugins-dir", str(env), "check", path]) == EXIT_OK
    monkeypatch.setitem(sys.modules, "botcore.app", None)  # botcore.app not installed at all
    assert main(["--plugins-dir", str(env), "check", path]) == EXIT_OK
    assert capsys.readouterr().out.count("config OK") == 2


def test_check_reports_unknown_names_with_line(env: Path, tmp_path: Path, capsys: Any) -> None:
    path = write(tmp_path, CONFIG)
    assert main(["--plugins-dir", str(env), "check", path]) == EXIT_CONFIG
    err = capsys.readouterr().err
    line = CONFIG.splitlines().index("    job: nothing") + 1
    assert f"{path}:{line}: schedules[0].job: unknown job 'nothing'" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------

RUN_CONFIG = CONFIG.split("schedules:")[0]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "file not found"),
        ("exchange: {symbols: [BTCUSDT], api_secret: hunter2-literal}\n", "exchange.api_secret"),
        (
            "exchange: {name: fake, symbols: [BTCUSDT]}\nstrategies: [{name: a, type: sample-hodl}]\n",
            "did you mean 'sample-hold'",
        ),
        (
            "exchange: {name: fake, symbols: [BTCUSDT]}\nrisk: {checks: [{type: sample-max-qty}]}\nrun: {durtion: 1s}\n",
            "did you mean 'duration'",
        ),
    ],
)
def test_run_config_errors_exit_2_without_traceback(
    env: Path, tmp_path: Path, fake_app: FakeApp, capsys: Any, text: str | None, words: str
) -> None:
    path = str(tmp_path / "missing.yaml") if text is None else write(tmp_path, text)
    assert main(["--plugins-dir", str(env), "run", path]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert err.startswith("botcore: config error: ") and words in err and path in err
    assert "Traceback" not in err and "hunter2" not in err
    assert fake_app.calls == []


def test_run_production_needs_the_flag(
    env: Path, tmp_path: Path, fake_app: FakeApp, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setenv("BOTCORE_TEST_K", "k")
    text = RUN_CONFIG.replace(
        "  symbols: [BTCUSDT]\n",
        "  symbols: [BTCUSDT]\n  mode: production\n  allow_production: true\n"
        "  api_key: $env:BOTCORE_TEST_K\n  api_secret: $env:BOTCORE_TEST_K\n",
    )
    path = write(tmp_path, text)
    assert main(["--plugins-dir", str(env), "run", path]) == EXIT_CONFIG
    assert "--i-mean-production" in capsys.readouterr().err
    assert fake_app.calls == []
    assert main(["--plugins-dir", str(env), "run", path, "--i-mean-production"]) == EXIT_OK
    assert fake_app.calls[0][1].exchange.mode == "production"


def test_run_hands_config_pm_and_args_to_the_app(env: Path, tmp_path: Path, fake_app: FakeApp) -> None:
    path = write(tmp_path, RUN_CONFIG)
    assert (
        main(["--log-level", "debug", "--plugins-dir", str(env), "run", path, "--duration", "90s"]) == EXIT_OK
    )
    [(what, config, pm, args)] = fake_app.calls
    assert what == "run" and config.source == path and config.strategies[0].type == "sample-hold"
    assert args.duration == 90.0 and args.log_level == "DEBUG"
    assert args.i_mean_production is False and args.plugin_manager is pm
    assert "sample-hold" in args.registry.strategies


@pytest.mark.parametrize(
    ("result", "code"),
    [
        (0, EXIT_OK),
        (1, EXIT_FAILURE),
        (RuntimeError("engine died"), EXIT_FAILURE),
        (KeyboardInterrupt(), EXIT_INTERRUPTED),
    ],
)
def test_run_exit_codes(
    env: Path, tmp_path: Path, fake_app: FakeApp, capsys: Any, result: Any, code: int
) -> None:
    fake_app.result = result
    assert main(["--plugins-dir", str(env), "run", write(tmp_path, RUN_CONFIG)]) == code
    if isinstance(result, RuntimeError):
        assert "engine died" in capsys.readouterr().err


def test_run_without_app_module_is_a_runtime_failure(
    env: Path, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.setitem(sys.modules, "botcore.app", None)
    assert main(["--plugins-dir", str(env), "run", write(tmp_path, RUN_CONFIG)]) == EXIT_FAILURE
    assert "botcore.app is not available" in capsys.readouterr().err
