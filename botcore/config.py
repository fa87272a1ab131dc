"""YAML -> validated, typed configuration.

One file configures a run. Every mistake is reported as a ``ConfigError`` whose message names the
file, the line and the key path (``config/paper.yaml:14: strategies[0].params: ...``), because a
bot that starts with a half-understood config is worse than one that refuses to start.

Rules worth knowing:

- Unknown keys are errors (``extra="forbid"``), with the nearest valid key suggested.
- Secrets are given by reference only: ``api_key: $env:BINANCE_API_KEY``. The variable is read at
  load time and the value kept in a ``SecretStr`` (never in reprs, logs or error messages). A
  literal key or secret in the file is refused, without echoing it. In free-form blocks
  (``params``, ``options``, ``plugins``) any ``$env:NAME`` string is resolved the same way and a
  literal value under a secret-looking key (``*secret``, ``*password``, ``*_token``, ``*api_key``,
  ...) is refused.
- Durations: ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h"``, ``"1h30m"``, ``"1d"`` or a number of seconds;
  after loading every duration is a float number of seconds (what schedulers and timers take).
- Money (balances): strings or numbers, converted to ``Decimal`` through ``str`` (so ``0.1`` stays
  ``0.1``, not a binary-float artefact).
- Relative paths are relative to the current directory (like every other CLI argument).
- Quote cron expressions in YAML: ``cron: "*/5 * * * *"`` (an unquoted ``*`` starts a YAML alias).

``load_config(path)`` is the entry point; ``config_from_text`` / ``config_from_dict`` do the same
for strings and mappings (tests). ``validate_against_registry`` checks the names of exchanges,
strategies, risk checks and jobs against what the loaded plugins registered.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

if TYPE_CHECKING:
    from botcore.plugins import Registry

__all__ = [
    "BotConfig",
    "ConfigError",
    "ConfigIssue",
    "ExchangeConfig",
    "MetricsConfig",
    "PaperConfig",
    "RiskCheckConfig",
    "RiskConfig",
    "RunConfig",
    "ScheduleConfig",
    "StrategyConfig",
    "config_from_dict",
    "config_from_text",
    "load_config",
    "parse_decimal",
    "parse_duration",
    "validate_against_registry",
]

Loc = tuple[str | int, ...]


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: ``key`` is a path like ``strategies[0].params.order_amount`` ("" = the file)."""

    key: str
    message: str
    line: int | None = None

    def format(self, source: str | None) -> str:
        where = source or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """A configuration problem, reported as ``file:line: key.path: message`` lines.

    Plugins may raise it from factories with just a message (and optionally ``key``, relative to
    their own block); the host re-anchors it with ``BotConfig.error_at``.
    """

    def __init__(
        self,
        message: str = "",
        *,
        source: str | os.PathLike[str] | None = None,
        key: str = "",
        line: int | None = None,
        issues: Sequence[ConfigIssue] = (),
    ) -> None:
        self.source = str(source) if source is not None else None
        self.issues: tuple[ConfigIssue, ...] = tuple(issues) or (ConfigIssue(key, message, line),)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.issues) == 1:
            return self.issues[0].format(self.source)
        lines = [f"{self.source or '<config>'}: {len(self.issues)} problems:"]
        lines += ["  " + issue.format(self.source) for issue in self.issues]
        return "\n".join(lines)


def _fail(message: str, at: Loc = ()) -> PydanticCustomError:
    """A validation error whose location is refined by ``at`` (relative to the failing model)."""
    return PydanticCustomError("botcore", "{message}", {"message": message, "at": at})


# ---------------------------------------------------------------------------------------------
# Scalar types
# ---------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """Seconds from ``"250ms"``, ``"30s"``, ``"5m"``, ``"1h30m"``, a number, or a timedelta; > 0."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"expected a duration like '30s' or '5m', got {value!r}")
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(n + u for n, u in parts) != text:
                raise ValueError(
                    f"expected a duration like '250ms', '30s', '5m', '1h' or seconds, got {value!r}"
                ) from None
            seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        raise ValueError(f"expected a duration like '30s' or '5m', got {type(value).__name__}")
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError(f"a duration must be positive and finite, got {value!r}")
    return seconds


def parse_decimal(value: object) -> Decimal:
    """A finite Decimal from a string, int or float (floats go through ``str``: 0.1 -> 0.1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a decimal number, got {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, (int, float, str)):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r}") from None
    else:
        raise ValueError(f"expected a decimal number, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError(f"expected a finite decimal number, got {value!r}")
    return result


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _decimal(value: object) -> Decimal:
    try:
        return parse_decimal(value)
    except ValueError as exc:
        raise _fail(str(exc)) from None


_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9._/-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _symbol(value: object) -> str:
    if not isinstance(value, str):
        raise _fail(f"a symbol must be a string like 'BTCUSDT', got {value!r}")
    symbol = value.strip().upper()
    if not _SYMBOL.match(symbol):
        raise _fail(f"not a valid symbol: {value!r}")
    return symbol


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise _fail(f"a name must be 1-64 letters, digits, '_', '.' or '-', got {value!r}")
    return value


_ENV_REF = re.compile(r"^\$env:([A-Za-z_][A-Za-z0-9_]*)$")
_SECRETISH_KEY = re.compile(r"(secret|password|passphrase|private_key|api_key|apikey|_token|^token)$", re.I)


def _resolve_env(ref: str, at: Loc = ()) -> SecretStr:
    match = _ENV_REF.match(ref.strip())
    if not match:
        raise _fail("expected '$env:NAME' (an environment variable name)", at)
    name = match.group(1)
    value = os.environ.get(name)
    if value is None:
        raise _fail(f"environment variable {name} is not set", at)
    if value == "":
        raise _fail(f"environment variable {name} is empty", at)
    return SecretStr(value)


def _secret(value: object) -> SecretStr | None:
    """``$env:NAME`` -> SecretStr; None/"" -> None; anything else refused without echoing it."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().startswith("$env:"):
        return _resolve_env(value)
    raise _fail(
        "literal credentials are not allowed in config files; write '$env:NAME' and export NAME "
        "(the value was not echoed)"
    )


def _free_value(value: Any, at: Loc) -> Any:
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if (
                isinstance(key, str)
                and _SECRETISH_KEY.search(key)
                and isinstance(item, str)
                and item
                and not item.strip().startswith("$env:")
            ):
                raise _fail(
                    f"{key!r} looks like a secret: write '$env:NAME' instead of a literal "
                    "(the value was not echoed)",
                    (*at, key),
                )
            out[key] = _free_value(item, (*at, key))
        return out
    if isinstance(value, list):
        return [_free_value(item, (*at, i)) for i, item in enumerate(value)]
    if isinstance(value, str) and value.strip().startswith("$env:"):
        return _resolve_env(value, at)
    return value


def _free_dict(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(f"expected a mapping of key: value, got {type(value).__name__}")
    result: dict[str, Any] = _free_value(value, ())
    return result


Duration = Annotated[float, BeforeValidator(_duration)]
"""A positive number of seconds (float) after loading; written as '30s', '5m', 90, ..."""
Money = Annotated[Decimal, BeforeValidator(_decimal)]
Symbol = Annotated[str, BeforeValidator(_symbol)]
Name = Annotated[str, BeforeValidator(_name)]
Secret = Annotated[SecretStr | None, BeforeValidator(_secret)]
FreeDict = Annotated[dict[str, Any], BeforeValidator(_free_dict)]
Port = Annotated[int, Field(ge=0, le=65535)]


# ---------------------------------------------------------------------------------------------
# Schema
# ---------------------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(names: Sequence[str], where: str, field_name: str = "name") -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise _fail(f"duplicate name {name!r} (also {where}[{seen[name]}])", (where, i, field_name))
        seen[name] = i


class RunConfig(_Model):
    """How the run is named, journaled, logged and stopped."""

    name: Name = Field("botcore", description="Run name; used in the journal path and logs.")
    journal: Path | None = Field(
        Path("runs/{name}.sqlite"),
        validate_default=True,
        description="SQLite journal file; '{name}' is replaced by run.name; null disables the journal.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Root log level (the --log-level option overrides it)."
    )
    log_json: bool = Field(False, description="Log one JSON object per line instead of text.")
    duration: Duration | None = Field(
        None,
        description="Stop after this long (e.g. '90s', '5m'; seconds after loading); null runs until stopped.",
    )
    status_every: Duration = Field(
        2.0, description="How often the status line is logged (seconds after loading)."
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("journal")
    @classmethod
    def _journal_name(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        return Path(str(value).replace("{name}", str(info.data.get("name", "botcore"))))


class ExchangeConfig(_Model):
    """Which venue to trade on and how to reach it."""

    name: str = Field("binance", min_length=1, description="Registered exchange adapter name.")
    mode: Literal["paper", "testnet", "production"] = Field(
        "paper",
        description="paper = the embedded local exchange; testnet = Binance spot testnet; "
        "production = real money (needs allow_production: true here and --i-mean-production).",
    )
    symbols: list[Symbol] = Field(
        ..., min_length=1, description="Symbols to stream and trade, e.g. [BTCUSDT]; upper-cased."
    )
    api_key: Secret = Field(None, description="'$env:NAME' only; required for testnet/production.")
    api_secret: Secret = Field(None, description="'$env:NAME' only; required for testnet/production.")
    rest_url: str | None = Field(None, description="Override the REST base URL (http/https).")
    stream_url: str | None = Field(None, description="Override the market/user stream URL (ws/wss).")
    ws_api_url: str | None = Field(None, description="Override the websocket API URL (ws/wss).")
    allow_production: bool = Field(False, description="Must be true for mode: production.")
    recv_window_ms: int = Field(5000, ge=1, le=60000, description="recvWindow for signed requests.")
    options: FreeDict = Field(default_factory=dict, description="Adapter-specific options, passed as is.")

    @field_validator("rest_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://", value):
            raise _fail(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("stream_url", "ws_api_url")
    @classmethod
    def _ws(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^wss?://", value):
            raise _fail(f"expected a ws:// or wss:// URL, got {value!r}")
        return value

    @model_validator(mode="after")
    def _mode_rules(self) -> ExchangeConfig:
        if len(set(self.symbols)) != len(self.symbols):
            dup = next(s for i, s in enumerate(self.symbols) if s in self.symbols[:i])
            raise _fail(f"symbol {dup!r} is listed twice", ("symbols",))
        if self.mode == "production" and not self.allow_production:
            raise _fail("mode 'production' trades real money: set allow_production: true", ("mode",))
        if self.mode != "paper":
            for key in ("api_key", "api_secret"):
                if getattr(self, key) is None:
                    raise _fail(f"required in {self.mode} mode: write '$env:NAME'", (key,))
        return self


class PaperConfig(_Model):
    """The embedded paper exchange (used when exchange.mode is paper)."""

    data: list[Path] | None = Field(
        None, description="Recording files to replay; null = the shipped BTCUSDT recording."
    )
    speed: float = Field(10.0, ge=0, description="Replay speed: 1 = real time, 0 = as fast as possible.")
    synthetic: bool = Field(False, description="Seeded random-walk market instead of a replay.")
    seed: int = Field(1, description="Random seed for the synthetic market and fault injection.")
    port: Port = Field(0, description="Local port of the paper exchange; 0 picks a free one.")
    balances: dict[str, Money] = Field(
        default_factory=lambda: {"USDT": Decimal("10000"), "BTC": Decimal("0.5")},
        description="Starting balances per asset (decimal strings).",
    )
    fill: FreeDict = Field(default_factory=dict, description="Queue/fill model knobs (see MATCHING.md).")
    faults: FreeDict = Field(default_factory=dict, description="Fault injection settings.")
    options: FreeDict = Field(default_factory=dict, description="Other paper-exchange options, as is.")

    @field_validator("data")
    @classmethod
    def _exists(cls, value: list[Path] | None) -> list[Path] | None:
        for i, path in enumerate(value or ()):
            if not path.is_file():
                raise _fail(f"recording file not found: {str(path)!r}", (i,))
        return value

    @field_validator("balances", mode="before")
    @classmethod
    def _assets(cls, value: object) -> object:
        if isinstance(value, Mapping):
            return {k.upper() if isinstance(k, str) else k: v for k, v in value.items()}
        return value

    @field_validator("balances")
    @classmethod
    def _non_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in value.items():
            if amount < 0:
                raise _fail(f"balance must not be negative, got {amount}", (asset,))
        return value


class StrategyConfig(_Model):
    """One strategy instance."""

    name: Name = Field(..., description="Unique instance name (appears in logs and client order ids).")
    type: str = Field(..., min_length=1, description="Registered strategy type.")
    symbols: list[Symbol] | None = Field(
        None, description="Symbols this instance quotes; null = all of exchange.symbols."
    )
    params: FreeDict = Field(default_factory=dict, description="Strategy parameters, passed to the factory.")


class RiskCheckConfig(_Model):
    """One link of the risk chain (run in list order before every order)."""

    type: str = Field(..., min_length=1, description="Registered risk check type.")
    name: Name | None = Field(None, description="Instance name; defaults to the type.")
    shadow: bool | None = Field(
        None, description="Log vetoes without enforcing them; null inherits risk.shadow (filled at load)."
    )
    params: FreeDict = Field(default_factory=dict, description="Check parameters, passed to the factory.")


class RiskConfig(_Model):
    """The risk chain."""

    shadow: bool = Field(False, description="Default for every check: log vetoes, do not enforce.")
    checks: list[RiskCheckConfig] = Field(default_factory=list, description="Checks in order.")

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("checks"), list):
            return data
        shadow = data.get("shadow", False)
        checks = []
        for check in data["checks"]:
            if isinstance(check, Mapping):
                check = dict(check)
                if check.get("shadow") is None:
                    check["shadow"] = shadow
                if check.get("name") is None and isinstance(check.get("type"), str):
                    check["name"] = check["type"]
            checks.append(check)
        return {**data, "checks": checks}

    @model_validator(mode="after")
    def _unique_names(self) -> RiskConfig:
        _unique([c.name or c.type for c in self.checks], "checks")
        return self


class ScheduleConfig(_Model):
    """A scheduled job (run on a scheduler thread, never the engine thread)."""

    name: Name = Field(..., description="Unique schedule name.")
    job: str = Field(..., min_length=1, description="Registered job kind.")
    every: Duration | None = Field(None, description="Interval trigger, e.g. '30s' (seconds after loading).")
    cron: str | None = Field(None, description="5-field crontab (UTC), e.g. '*/5 * * * *'; quote it.")
    misfire_grace: Duration = Field(10.0, description="Run a late job if it is at most this late (seconds).")
    params: FreeDict = Field(default_factory=dict, description="Job parameters, passed to the job.")

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise _fail(f"invalid cron expression {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleConfig:
        if self.every is not None and self.cron is not None:
            raise _fail("give either 'every' or 'cron', not both", ("cron",))
        if self.every is None and self.cron is None:
            raise _fail("give one of 'every' (e.g. '30s') or 'cron' (e.g. '*/5 * * * *')")
        return self


class MetricsConfig(_Model):
    """Prometheus metrics endpoint."""

    port: Port | None = Field(
        None, description="Serve /metrics on this port; null = no endpoint, 0 = free port."
    )
    host: str = Field("127.0.0.1", description="Bind address; keep it local unless you mean it.")


class EngineSection(_Model):
    """How the engine thread runs."""

    cpu: Annotated[int, Field(ge=0)] | Literal["auto"] | None = Field(
        None,
        description=(
            "Pin the engine thread to this CPU (Linux): a thread that moves between cores starts "
            "each decision with cold caches. 'auto' = the last CPU this process may use, if it "
            "may use more than one; null = let the OS place it."
        ),
    )

    @field_validator("cpu")
    @classmethod
    def _available(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and hasattr(os, "sched_getaffinity"):
            allowed = sorted(os.sched_getaffinity(0))
            if value not in allowed:
                raise _fail(f"CPU {value} is not one this process may run on: {allowed}")
        return value

    def engine_cpu(self) -> int | None:
        """The CPU to pin the engine thread to (``EngineConfig.cpu``), 'auto' resolved here."""
        if self.cpu != "auto":
            return self.cpu  # type: ignore[return-value]
        if not hasattr(os, "sched_getaffinity"):
            return None
        allowed = os.sched_getaffinity(0)
        return max(allowed) if len(allowed) > 1 else None  # one CPU: nothing to choose


class BotConfig(_Model):
    """The whole file. Load it with ``load_config``; treat it as read-only (it is frozen)."""

    run: RunConfig = Field(default_factory=RunConfig, description="Run name, journal, logging, duration.")
    exchange: ExchangeConfig = Field(..., description="Venue, mode, symbols, credentials.")
    paper: PaperConfig = Field(default_factory=PaperConfig, description="The embedded paper exchange.")
    strategies: list[StrategyConfig] = Field(default_factory=list, description="Strategy instances.")
    risk: RiskConfig = Field(default_factory=RiskConfig, description="The risk chain.")
    schedules: list[ScheduleConfig] = Field(default_factory=list, description="Scheduled jobs.")
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="Metrics endpoint.")
    engine: EngineSection = Field(default_factory=EngineSection, description="The engine thread.")
    plugins: dict[str, FreeDict] = Field(
        default_factory=dict, description="Per-plugin blocks, keyed by plugin name, passed as is."
    )

    _source: str | None = PrivateAttr(None)
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _default_symbols(cls, data: Any) -> Any:
        """A strategy without ``symbols`` quotes every exchange symbol."""
        if not isinstance(data, Mapping):
            return data
        exchange, strategies = data.get("exchange"), data.get("strategies")
        if not (isinstance(exchange, Mapping) and isinstance(strategies, list)):
            return data
        symbols = exchange.get("symbols")
        if not isinstance(symbols, list):
            return data
        filled = [
            {**s, "symbols": list(symbols)} if isinstance(s, Mapping) and s.get("symbols") is None else s
            for s in strategies
        ]
        return {**data, "strategies": filled}

    @model_validator(mode="after")
    def _cross_checks(self) -> BotConfig:
        _unique([s.name for s in self.strategies], "strategies")
        _unique([s.name for s in self.schedules], "schedules")
        known = set(self.exchange.symbols)
        for i, strategy in enumerate(self.strategies):
            for j, symbol in enumerate(strategy.symbols or ()):
                if symbol not in known:
                    raise _fail(
                        f"symbol {symbol!r} is not in exchange.symbols {sorted(known)}",
                        ("strategies", i, "symbols", j),
                    )
        return self

    # -- locating problems ---------------------------------------------------------------------
    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._source

    def line_of(self, loc: Loc) -> int | None:
        """Line of the key at ``loc`` (or of its nearest present parent) in the source file."""
        return _line_of(self._lines, loc)

    def error_at(self, loc: Loc, error: str | BaseException) -> ConfigError:
        """A ConfigError anchored at ``loc`` (e.g. ``("strategies", 0, "params")``).

        ``error`` may be a message, a ``ValueError``, or a ``ConfigError`` raised by a plugin
        factory whose ``key`` is relative to ``loc`` (``key="order_amount"``).
        """
        issues: list[ConfigIssue] = []
        if isinstance(error, ConfigError):
            for issue in error.issues:
                sub = _parse_keypath(issue.key)
                full = (*loc, *sub)
                issues.append(ConfigIssue(_keypath(full), issue.message, self.line_of(full)))
        else:
            issues.append(ConfigIssue(_keypath(loc), str(error), self.line_of(loc)))
        return ConfigError(source=self._source, issues=issues)


# ---------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------

_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that records the line of every mapping key and sequence item."""

    def record_lines(self, node: yaml.Node) -> tuple[dict[Loc, int], list[ConfigIssue]]:
        lines: dict[Loc, int] = {(): node.start_mark.line + 1}
        issues: list[ConfigIssue] = []
        self._walk(node, (), lines, issues, merged=False)
        return lines, issues

    def _walk(
        self, node: yaml.Node, path: Loc, lines: dict[Loc, int], issues: list[ConfigIssue], merged: bool
    ) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    targets = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                    for target in targets:
                        self._walk(target, path, lines, issues, merged=True)
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in seen:
                    issues.append(
                        ConfigIssue(
                            _keypath((*path, key)), "duplicate key (YAML would keep only the last)", line
                        )
                    )
                seen.add(key)
                if merged:
                    lines.setdefault((*path, key), line)
                else:
                    lines[(*path, key)] = line
                self._walk(value_node, (*path, key), lines, issues, merged)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault((*path, i), item.start_mark.line + 1)
                self._walk(item, (*path, i), lines, issues, merged)


def _parse_yaml(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError("the file is empty", source=source)
        lines, issues = loader.record_lines(node)
        if issues:
            raise ConfigError(source=source, issues=issues)
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        if "found character '*'" in message or "alias" in message:
            message += "; quote values that start with '*' (e.g. cron: \"*/5 * * * *\")"
        raise ConfigError(message, source=source, line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return data, lines


# ---------------------------------------------------------------------------------------------
# Mapping validation errors to key paths and lines
# ---------------------------------------------------------------------------------------------


def _keypath(loc: Sequence[str | int]) -> str:
    out = ""
    for elem in loc:
        if isinstance(elem, int):
            out += f"[{elem}]"
        else:
            out += f".{elem}" if out else str(elem)
    return out


def _parse_keypath(key: str) -> Loc:
    out: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    for end in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:end]))
        if line is not None:
            return line
    return None


def _data_loc(data: Any, loc: Sequence[str | int]) -> Loc:
    """Keep the parts of a pydantic ``loc`` that address the input (drop union/type tags)."""
    out: list[str | int] = []
    node: Any = data
    for elem in loc:
        present = (isinstance(node, Mapping) and elem in node) or (
            isinstance(node, list) and isinstance(elem, int) and 0 <= elem < len(node)
        )
        if present:
            node = node[elem]
            out.append(elem)
        elif (
            isinstance(node, Mapping)
            and isinstance(elem, str)
            and (folded := [k for k in node if isinstance(k, str) and k.upper() == elem.upper()])
        ):
            node = node[folded[0]]  # a key we upper-cased (symbols, assets): report the file's spelling
            out.append(folded[0])
        elif isinstance(node, Mapping) and isinstance(elem, str) and not _is_tag(elem):
            out.append(elem)  # a missing key
            node = None
        elif node is None and not _is_tag(str(elem)):
            out.append(elem)
    return tuple(out)


def _is_tag(elem: str) -> bool:
    return "[" in elem or elem in {"str", "int", "float", "bool", "list", "dict", "none", "function-after"}


def _unwrap(tp: Any) -> Any:
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin is Union or type(tp).__name__ == "UnionType":
            args = [a for a in get_args(tp) if a is not type(None)]
            tp = args[0] if args else tp
            if not args:
                return tp
        else:
            return tp


def _fields_at(loc: Loc) -> list[str]:
    """Valid keys of the model addressed by ``loc`` (for "did you mean" suggestions)."""
    tp: Any = BotConfig
    for elem in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if not isinstance(elem, str) or elem not in tp.model_fields:
                return []
            tp = tp.model_fields[elem].annotation
        elif get_origin(tp) is list and isinstance(elem, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


_SECRET_KEYS = {"api_key", "api_secret"}


def _issue_from(err: Mapping[str, Any], data: Any, lines: Mapping[Loc, int]) -> ConfigIssue:
    ctx = err.get("ctx") or {}
    raw_loc = tuple(err["loc"])
    if err["type"] == "botcore" and ctx.get("at"):
        raw_loc = (*raw_loc, *ctx["at"])
    loc = _data_loc(data, raw_loc)
    line = _line_of(lines, loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        key = loc[-1] if loc else "?"
        valid = _fields_at(loc[:-1])
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.6)
        if close:
            message = f"unknown key {key!r}; did you mean {close[0]!r}?"
        else:
            message = f"unknown key {key!r}; valid keys here: {', '.join(valid)}"
    elif kind == "missing":
        message = "required key is missing"
    elif kind == "botcore":
        message = str(ctx.get("message", err["msg"]))
    else:
        message = err["msg"]
        value = err.get("input")
        secretish = any(isinstance(p, str) and (p in _SECRET_KEYS or _SECRETISH_KEY.search(p)) for p in loc)
        if not secretish and isinstance(value, (str, int, float, bool)) and len(repr(value)) <= 60:
            message += f" (got {value!r})"
    return ConfigIssue(_keypath(loc), message, line)


# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


def config_from_dict(
    data: Any, *, source: str | None = None, lines: Mapping[Loc, int] | None = None
) -> BotConfig:
    """Validate already-parsed data; ``lines`` maps key paths to source lines for messages."""
    lines = dict(lines or {})
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"the top level must be a mapping (run:, exchange:, ...), got {type(data).__name__}",
            source=source,
            line=1,
        )
    errors: list[Any] | None = None
    try:
        config = BotConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    if errors:
        # Raised outside the except block: no chained ValidationError (it carries raw inputs,
        # literal secrets included) ever reaches a traceback.
        issues = [_issue_from(err, data, lines) for err in errors]
        issues.sort(key=lambda i: (i.line or 0, i.key))
        raise ConfigError(source=source, issues=issues)
    config._source = source
    config._lines = lines
    return config


def config_from_text(text: str, *, source: str = "<string>") -> BotConfig:
    """Parse YAML text and validate it (``source`` names it in messages)."""
    data, lines = _parse_yaml(text, source)
    return config_from_dict(data, source=source, lines=lines)


def load_config(path: str | os.PathLike[str]) -> BotConfig:
    """Load and validate a YAML config file.

    :raises ConfigError: unreadable file, invalid YAML, or any schema problem (all of them at once).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file: {exc}", source=source) from None
    return config_from_text(text, source=source)


def validate_against_registry(config: BotConfig, registry: Registry) -> None:
    """Check that every exchange, strategy, risk check and job type named in ``config`` exists.

    :raises ConfigError: listing each unknown name with its key path, line and the nearest
        registered name.
    """
    wanted: list[tuple[Loc, str, str]] = [(("exchange", "name"), config.exchange.name, "exchanges")]
    wanted += [(("strategies", i, "type"), s.type, "strategies") for i, s in enumerate(config.strategies)]
    wanted += [
        (("risk", "checks", i, "type"), c.type, "risk_checks") for i, c in enumerate(config.risk.checks)
    ]
    wanted += [(("schedules", i, "job"), s.job, "jobs") for i, s in enumerate(config.schedules)]
    labels = {
        "exchanges": "exchange",
        "strategies": "strategy type",
        "risk_checks": "risk check",
        "jobs": "job",
    }
    issues = []
    for loc, name, kind in wanted:
        known = sorted(registry.kind(kind))
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        if close:
            hint = f"did you mean {close[0]!r}?"
        elif known:
            hint = f"registered: {', '.join(known)}"
        else:
            hint = "no plugin registers any (is the plugin installed? see `botcore plugins`)"
        issues.append(
            ConfigIssue(_keypath(loc), f"unknown {labels[kind]} {name!r}; {hint}", config.line_of(loc))
        )
    if issues:
        raise ConfigError(source=config.source, issues=issues)
