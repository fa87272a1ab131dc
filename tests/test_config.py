"""YAML config: schema, secrets by reference, and errors that name file, line and key path."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from botcore import config as config_module
from botcore.config import (
    BotConfig,
    ConfigError,
    config_from_text,
    load_config,
    parse_decimal,
    parse_duration,
    validate_against_registry,
)
from botcore.plugins import Registry

MINIMAL = """\
exchange:
  symbols: [btcusdt]
"""


def load(text: str, tmp_path: Path, name: str = "bot.yaml") -> BotConfig:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_config(path)


def error(text: str, tmp_path: Path, name: str = "bot.yaml") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path, name)
    return info.value


def line_of(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle`` (so tests never hard-code lines)."""
    for i, line in enumerate(textwrap.dedent(text).splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


# ---------------------------------------------------------------------------------------------
# A valid file
# ---------------------------------------------------------------------------------------------

FULL = """\
run:
  name: demo
  log_level: debug
  duration: 5m
  status_every: 250ms
exchange:
  name: binance
  mode: testnet
  symbols: [btcusdt, ethusdt]
  api_key: $env:BOTCORE_TEST_KEY
  api_secret: $env:BOTCORE_TEST_SECRET
  recv_window_ms: 10000
  options: {pool_size: 4}
paper:
  speed: 0
  balances: {usdt: 0.1, btc: "2.5"}
  fill: {queue_model: "power:3"}
strategies:
  - name: mm
    type: marketmaker
    params: {order_amount: "0.001", levels: 2}
  - name: eth-only
    type: marketmaker
    symbols: [ethusdt]
risk:
  shadow: true
  checks:
    - type: max-position
      params: {max: "1"}
    - type: price-band
      name: band
      shadow: false
schedules:
  - name: reconcile
    job: reconcile
    every: 30s
  - name: nightly
    job: report
    cron: "0 0 * * *"
    misfire_grace: 1m
metrics:
  port: 0
plugins:
  touch:
    webhook_token: $env:BOTCORE_TEST_TOKEN
    nested: {items: [1, $env:BOTCORE_TEST_TOKEN]}
"""


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "BOTCORE_TEST_KEY": "key-AbC123",
        "BOTCORE_TEST_SECRET": "secret-XyZ789",
        "BOTCORE_TEST_TOKEN": "token-QqQ456",
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def test_full_config_is_typed_and_defaults_are_filled(tmp_path: Path, secrets_env: dict[str, str]) -> None:
    cfg = load(FULL, tmp_path)
    assert cfg.source == str(tmp_path / "bot.yaml")
    assert cfg.run.name == "demo" and cfg.run.log_level == "DEBUG"
    assert cfg.run.journal == Path("runs/demo.sqlite")
    assert cfg.run.duration == 300.0
    assert cfg.run.status_every == 0.25
    ex = cfg.exchange
    assert ex.symbols == ["BTCUSDT", "ETHUSDT"] and ex.mode == "testnet" and ex.recv_window_ms == 10000
    assert isinstance(ex.api_key, SecretStr) and ex.api_key.get_secret_value() == "key-AbC123"
    assert ex.api_secret is not None and ex.api_secret.get_secret_value() == "secret-XyZ789"
    assert cfg.paper.balances == {"USDT": Decimal("0.1"), "BTC": Decimal("2.5")}
    assert str(cfg.paper.balances["USDT"]) == "0.1"  # via str, no binary-float artefact
    assert cfg.paper.speed == 0 and cfg.paper.fill == {"queue_model": "power:3"}
    assert [s.symbols for s in cfg.strategies] == [["BTCUSDT", "ETHUSDT"], ["ETHUSDT"]]
    assert cfg.strategies[0].params == {"order_amount": "0.001", "levels": 2}
    assert [(c.name, c.shadow) for c in cfg.risk.checks] == [("max-position", True), ("band", False)]
    assert cfg.schedules[0].every == 30.0 and cfg.schedules[0].cron is None
    assert cfg.schedules[1].cron == "0 0 * * *" and cfg.schedules[1].misfire_grace == 60.0
    assert cfg.metrics.port == 0 and cfg.metrics.host == "127.0.0.1"
    token = cfg.plugins["touch"]["webhook_token"]
    assert isinstance(token, SecretStr) and token.get_secret_value() == "token-QqQ456"
    assert cfg.plugins["touch"]["nested"]["items"][1].get_secret_value() == "token-QqQ456"


def test_secrets_never_appear_in_reprs(tmp_path: Path, secrets_env: dict[str, str]) -> None:
    cfg = load(FULL, tmp_path)
    for text in (repr(cfg), str(cfg), cfg.model_dump_json()):
        for value in secrets_env.values():
            assert value not in text


def test_minimal_config_defaults(tmp_path: Path) -> None:
    cfg = load(MINIMAL, tmp_path)
    assert cfg.run.name == "botcore" and cfg.run.journal == Path("runs/botcore.sqlite")
    assert cfg.run.duration is None and cfg.run.status_every == 2.0
    assert cfg.schedules == []
    assert cfg.exchange.name == "binance" and cfg.exchange.mode == "paper"
    assert cfg.exchange.api_key is None and cfg.exchange.allow_production is False
    assert cfg.paper.data is None and cfg.paper.speed == 10.0 and cfg.paper.port == 0
    assert cfg.paper.balances == {"USDT": Decimal("10000"), "BTC": Decimal("0.5")}
    assert cfg.strategies == [] and cfg.schedules == [] and cfg.plugins == {}
    assert cfg.metrics.port is None


def test_journal_can_be_disabled_and_data_files_are_checked(tmp_path: Path) -> None:
    recording = tmp_path / "rec.gz"
    recording.write_bytes(b"")
    cfg = load(MINIMAL + f"run: {{journal: null}}\npaper: {{data: ['{recording}']}}\n", tmp_path)
    assert cfg.run.journal is None and cfg.paper.data == [recording]
    text = MINIMAL + "paper:\n  data:\n    - nowhere.gz\n"
    err = error(text, tmp_path)
    assert "paper.data[0]" in str(err) and "nowhere.gz" in str(err)
    assert err.issues[0].line == line_of(text, "nowhere.gz")


def test_config_is_frozen(tmp_path: Path) -> None:
    cfg = load(MINIMAL, tmp_path)
    with pytest.raises(ValueError):
        cfg.run.name = "other"  # type: ignore[misc]


def test_every_option_is_documented() -> None:
    models = [m for m in vars(config_module).values() if isinstance(m, type) and issubclass(m, BaseModel)]
    models = [m for m in models if m.__module__ == config_module.__name__ and not m.__name__.startswith("_")]
    assert len(models) == 10
    for model in models:
        assert model.__doc__ and model.__doc__.strip(), model.__name__
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


# ---------------------------------------------------------------------------------------------
# Errors: file, line, key path
# ---------------------------------------------------------------------------------------------


def test_unknown_key_suggests_the_nearest_with_line(tmp_path: Path) -> None:
    text = MINIMAL + "run:\n  name: x\n  duraton: 5m\n"
    err = error(text, tmp_path, "typo.yaml")
    line = line_of(text, "duraton")
    assert str(err) == (
        f"{tmp_path / 'typo.yaml'}:{line}: run.duraton: unknown key 'duraton'; did you mean 'duration'?"
    )


def test_unknown_key_without_a_close_match_lists_valid_keys(tmp_path: Path) -> None:
    err = error(MINIMAL + "metrics: {zzz: 1}\n", tmp_path)
    assert "metrics.zzz: unknown key 'zzz'; valid keys here: port, host" in str(err)


def test_unknown_top_level_and_nested_list_keys(tmp_path: Path) -> None:
    text = MINIMAL + "strategy: []\nschedules:\n  - name: a\n    job: j\n    evry: 5s\n"
    err = error(text, tmp_path)
    keys = {i.key: i for i in err.issues}
    assert "did you mean 'strategies'?" in keys["strategy"].message
    assert keys["strategy"].line == line_of(text, "strategy:")
    assert "did you mean 'every'?" in keys["schedules[0].evry"].message
    assert keys["schedules[0].evry"].line == line_of(text, "evry")
    assert str(err).startswith(f"{tmp_path / 'bot.yaml'}: ") and "problems:" in str(err)


def test_wrong_type_names_key_line_and_value(tmp_path: Path) -> None:
    text = MINIMAL.replace("exchange:\n", "exchange:\n  recv_window_ms: soon\n")
    err = error(text, tmp_path)
    [issue] = err.issues
    assert issue.key == "exchange.recv_window_ms"
    assert issue.line == line_of(text, "recv_window_ms")
    assert "valid integer" in issue.message and "'soon'" in issue.message


@pytest.mark.parametrize(
    ("snippet", "key", "words"),
    [
        ("paper: {speed: -1}", "paper.speed", "greater than or equal to 0"),
        ("paper: {port: 70000}", "paper.port", "less than or equal to 65535"),
        ("paper: {balances: {usdt: -5}}", "paper.balances.usdt", "must not be negative"),
        ("paper: {balances: {usdt: lots}}", "paper.balances.usdt", "expected a decimal number"),
        ("paper: {balances: {usdt: .nan}}", "paper.balances.usdt", "finite"),
        ("run: {log_level: LOUD}", "run.log_level", "DEBUG"),
        ("run: {name: 'has space'}", "run.name", "letters, digits"),
        ("exchange: {symbols: []}", "exchange.symbols", "at least 1"),
        ("exchange: {symbols: [BTCUSDT, btcusdt]}", "exchange.symbols", "listed twice"),
        ("exchange: {symbols: [BTCUSDT], rest_url: ftp://x}", "exchange.rest_url", "http"),
        ("exchange: {symbols: [BTCUSDT], mode: live}", "exchange.mode", "paper"),
        ("exchange: {symbols: [BTCUSDT], recv_window_ms: 70000}", "exchange.recv_window_ms", "60000"),
    ],
)
def test_bad_values(tmp_path: Path, snippet: str, key: str, words: str) -> None:
    text = snippet + "\n" if snippet.startswith("exchange") else MINIMAL + snippet + "\n"
    err = error(text, tmp_path)
    assert [i.key for i in err.issues] == [key]
    assert words in err.issues[0].message
    assert err.issues[0].line == line_of(text, snippet.split(":")[0] + ":")


def test_missing_required_keys(tmp_path: Path) -> None:
    err = error("run: {name: x}\n", tmp_path)
    assert [(i.key, i.message) for i in err.issues] == [("exchange", "required key is missing")]
    text = MINIMAL + "strategies:\n  - name: a\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("strategies[0].type", line_of(text, "- name: a"))]


def test_yaml_errors_have_lines(tmp_path: Path) -> None:
    text = MINIMAL + "schedules:\n  - name: a\n    job: j\n    cron: */5 * * * *\n"
    err = error(text, tmp_path)
    assert err.issues[0].line == line_of(text, "cron:")
    assert "invalid YAML" in str(err) and "quote" in str(err)
    err = error("exchange: [unclosed\n", tmp_path)
    assert "invalid YAML" in str(err) and err.issues[0].line is not None
    assert "empty" in str(error("", tmp_path))
    assert "top level must be a mapping" in str(error("- a\n- b\n", tmp_path))


def test_duplicate_yaml_keys_are_refused(tmp_path: Path) -> None:
    text = MINIMAL + "run:\n  name: a\n  name: b\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("run.name", line_of(text, "name: b"))]
    assert "duplicate key" in str(err)


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    text = MINIMAL + "strategies:\n  - &base {name: a, type: mm, params: {q: 1}}\n  - {<<: *base, name: b}\n"
    cfg = load(text, tmp_path)
    assert [(s.name, s.type, s.params) for s in cfg.strategies] == [
        ("a", "mm", {"q": 1}),
        ("b", "mm", {"q": 1}),
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: file not found"):
        load_config(tmp_path / "nope.yaml")


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------

LITERAL = "sk-9f8e7d6c5b4a-LITERAL"


@pytest.mark.parametrize("field", ["api_key", "api_secret"])
def test_literal_credentials_are_refused_without_echo(tmp_path: Path, field: str) -> None:
    text = f"exchange:\n  symbols: [BTCUSDT]\n  {field}: {LITERAL}\n"
    with pytest.raises(ConfigError) as info:
        load(text, tmp_path)
    err = info.value
    assert f"exchange.{field}" in str(err) and "$env:NAME" in str(err)
    assert err.issues[0].line == line_of(text, field)
    assert LITERAL not in str(err) and LITERAL not in repr(err) and LITERAL not in repr(err.issues)
    # Nothing chained either: a traceback must not carry pydantic's copy of the input.
    assert err.__cause__ is None and err.__context__ is None


def test_literal_secret_in_a_free_block_is_refused_without_echo(tmp_path: Path) -> None:
    text = MINIMAL + f"plugins:\n  touch:\n    webhook_token: {LITERAL}\n    token_count: 5\n"
    err = error(text, tmp_path)
    assert [i.key for i in err.issues] == ["plugins.touch.webhook_token"]
    assert err.issues[0].line == line_of(text, "webhook_token")
    assert LITERAL not in str(err)


def test_secret_like_key_with_bad_type_does_not_echo(tmp_path: Path) -> None:
    err = error("exchange:\n  symbols: [BTCUSDT]\n  api_secret: 123456789\n", tmp_path)
    assert "123456789" not in str(err)


def test_missing_and_empty_env_vars_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTCORE_TEST_NOPE", raising=False)
    text = "exchange:\n  symbols: [BTCUSDT]\n  api_key: $env:BOTCORE_TEST_NOPE\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("exchange.api_key", line_of(text, "api_key"))]
    assert "environment variable BOTCORE_TEST_NOPE is not set" in str(err)
    monkeypatch.setenv("BOTCORE_TEST_NOPE", "")
    assert "BOTCORE_TEST_NOPE is empty" in str(error(text, tmp_path))
    bad = "exchange:\n  symbols: [BTCUSDT]\n  api_key: $env:not-a-name\n"
    assert "expected '$env:NAME'" in str(error(bad, tmp_path))


def test_production_needs_allow_production_and_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = "exchange:\n  symbols: [BTCUSDT]\n  mode: production\n"
    err = error(text, tmp_path)
    assert [i.key for i in err.issues] == ["exchange.mode"] and "allow_production: true" in str(err)
    assert err.issues[0].line == line_of(text, "mode:")
    err = error(text + "  allow_production: true\n", tmp_path)
    assert [i.key for i in err.issues] == ["exchange.api_key"]
    monkeypatch.setenv("BOTCORE_K", "k")
    keys = "  api_key: $env:BOTCORE_K\n  api_secret: $env:BOTCORE_K\n"
    assert load(text + "  allow_production: true\n" + keys, tmp_path).exchange.mode == "production"
    err = error("exchange:\n  symbols: [BTCUSDT]\n  mode: testnet\n  api_key: $env:BOTCORE_K\n", tmp_path)
    assert [i.key for i in err.issues] == ["exchange.api_secret"]


# ---------------------------------------------------------------------------------------------
# Durations, cron, cross-field rules
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1.5", 1.5),
        (90, 90),
        (0.5, 0.5),
        (" 10 s ", 10),
        (timedelta(seconds=3), 3),
    ],
)
def test_parse_duration(text: Any, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize("bad", ["", "5x", "s", "-1s", "1h-5m", 0, -3, True, None, [1], "inf", "nan"])
def test_parse_duration_rejects(bad: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_parse_decimal() -> None:
    assert parse_decimal(0.1) == Decimal("0.1") and parse_decimal("1e-8") == Decimal("0.00000001")
    assert parse_decimal(3) == Decimal(3)
    for bad in (True, "x", float("inf"), "NaN", None):
        with pytest.raises(ValueError):
            parse_decimal(bad)


def test_bad_duration_in_file(tmp_path: Path) -> None:
    text = MINIMAL + "run:\n  status_every: soonish\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("run.status_every", line_of(text, "status_every"))]
    assert "'soonish'" in str(err)


@pytest.mark.parametrize(
    ("cron", "words"),
    [("'* * * *'", "Wrong number of fields"), ("'61 * * * *'", "61"), ("'0 0 * * funday'", "funday")],
)
def test_bad_cron(tmp_path: Path, cron: str, words: str) -> None:
    text = MINIMAL + f"schedules:\n  - name: a\n    job: j\n    cron: {cron}\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("schedules[0].cron", line_of(text, "cron:"))]
    assert "invalid cron expression" in str(err) and words in str(err)


def test_exactly_one_of_every_and_cron(tmp_path: Path) -> None:
    both = MINIMAL + "schedules:\n  - name: a\n    job: j\n    every: 5s\n    cron: '* * * * *'\n"
    err = error(both, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("schedules[0].cron", line_of(both, "cron:"))]
    assert "not both" in str(err)
    neither = MINIMAL + "schedules:\n  - name: a\n    job: j\n"
    err = error(neither, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("schedules[0]", line_of(neither, "- name: a"))]
    assert "give one of 'every'" in str(err)


def test_duplicate_names_point_at_the_second(tmp_path: Path) -> None:
    text = MINIMAL + "strategies:\n  - {name: a, type: t}\n  - {name: b, type: t}\n  - {name: a, type: u}\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("strategies[2].name", line_of(text, "type: u"))]
    assert "also strategies[0]" in str(err)
    text = MINIMAL + "risk:\n  checks:\n    - type: x\n    - type: x\n"
    assert [i.key for i in error(text, tmp_path).issues] == ["risk.checks[1].name"]


def test_strategy_symbols_must_be_exchange_symbols(tmp_path: Path) -> None:
    text = MINIMAL + "strategies:\n  - name: a\n    type: t\n    symbols: [ethusdt]\n"
    err = error(text, tmp_path)
    assert [(i.key, i.line) for i in err.issues] == [("strategies[0].symbols[0]", line_of(text, "ethusdt"))]
    assert "'ETHUSDT' is not in exchange.symbols" in str(err)


# ---------------------------------------------------------------------------------------------
# Against the plugin registry
# ---------------------------------------------------------------------------------------------

REGISTRY_TEXT = """\
exchange:
  name: binanse
  symbols: [BTCUSDT]
strategies:
  - name: mm
    type: market-maker
risk:
  checks:
    - type: max-qty
schedules:
  - name: r
    job: reconcil
    every: 5s
"""


def test_validate_against_registry_names_line_and_nearest(tmp_path: Path) -> None:
    cfg = load(REGISTRY_TEXT, tmp_path)
    registry = Registry(
        exchanges={"binance": dict, "paper": dict},
        strategies={"marketmaker": dict},
        risk_checks={},
        jobs={"reconcile": dict},
    )
    with pytest.raises(ConfigError) as info:
        validate_against_registry(cfg, registry)
    issues = {i.key: i for i in info.value.issues}
    assert set(issues) == {"exchange.name", "strategies[0].type", "risk.checks[0].type", "schedules[0].job"}
    assert issues["exchange.name"].message == "unknown exchange 'binanse'; did you mean 'binance'?"
    assert issues["exchange.name"].line == line_of(REGISTRY_TEXT, "binanse")
    assert "did you mean 'marketmaker'?" in issues["strategies[0].type"].message
    assert issues["strategies[0].type"].line == line_of(REGISTRY_TEXT, "market-maker")
    assert "no plugin registers any" in issues["risk.checks[0].type"].message
    assert "did you mean 'reconcile'?" in issues["schedules[0].job"].message
    registry.exchanges["binanse"] = dict
    registry.strategies["market-maker"] = dict
    registry.risk_checks["max-qty"] = dict
    registry.jobs["reconcil"] = dict
    validate_against_registry(cfg, registry)  # all known now: no error


def test_error_at_reanchors_plugin_errors(tmp_path: Path) -> None:
    text = MINIMAL + "risk:\n  checks:\n    - type: max-qty\n      params:\n        max_qty: -1\n"
    cfg = load(text, tmp_path)
    err = cfg.error_at(("risk", "checks", 0, "params"), ConfigError("must be positive", key="max_qty"))
    assert str(err) == (
        f"{cfg.source}:{line_of(text, 'max_qty')}: risk.checks[0].params.max_qty: must be positive"
    )
    err = cfg.error_at(("risk", "checks", 0, "params"), ValueError("bad params"))
    assert str(err) == f"{cfg.source}:{line_of(text, 'params:')}: risk.checks[0].params: bad params"
    err = cfg.error_at(("strategies", 3), "gone")
    assert err.issues[0].line == 1  # falls back to the nearest present parent (the document)


def test_config_from_text_names_its_source() -> None:
    with pytest.raises(ConfigError, match=r"^inline:3: run\.nme: unknown key"):
        config_from_text(MINIMAL + "run: {nme: x}\n", source="inline")


# ---------------------------------------------------------------------------------------------
# engine.cpu
# ---------------------------------------------------------------------------------------------


def test_engine_cpu_is_unpinned_by_default_and_takes_a_cpu_or_auto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    assert load(MINIMAL, tmp_path).engine.engine_cpu() is None
    allowed = sorted(os.sched_getaffinity(0))
    assert load(MINIMAL + f"engine: {{cpu: {allowed[0]}}}\n", tmp_path).engine.engine_cpu() == allowed[0]
    auto = load(MINIMAL + "engine: {cpu: auto}\n", tmp_path).engine
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 3})
    assert auto.engine_cpu() == 3  # the last CPU the process may use
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {2})
    assert auto.engine_cpu() is None  # only one: nothing to gain


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-1", "greater than or equal to 0"),
        ("fast", "auto"),
        ("4096", "CPU 4096 is not one this process may run on"),
    ],
)
def test_a_bad_engine_cpu_is_a_located_error(tmp_path: Path, value: str, message: str) -> None:
    text = MINIMAL + f"engine:\n  cpu: {value}\n"
    err = str(error(text, tmp_path))
    assert f"bot.yaml:{line_of(text, 'cpu:')}: engine.cpu" in err and message in err, err
