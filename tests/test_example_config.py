"""config/example.yaml cannot rot: it loads, every block is accepted by the code that owns it, and
every option those owners know appears in it (as a key or in a comment)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from botcore import app
from botcore.config import BotConfig, ConfigError, config_from_text, load_config, validate_against_registry
from botcore.model import Instrument
from botcore.plugins import Registry, collect_registry, get_plugin_manager

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "example.yaml"
THIRD_PARTY_SAMPLES = "sample"  # tests/sample_plugin registers these; not botcore's own


@pytest.fixture(scope="module")
def registry() -> Registry:
    return collect_registry(get_plugin_manager())


@pytest.fixture(scope="module")
def config(registry: Registry) -> BotConfig:
    cfg = load_config(EXAMPLE)
    validate_against_registry(cfg, registry)
    return cfg


def _documented() -> set[str]:
    """Every ``key:`` written in the file, in YAML or in a comment, and every ``type:``/``job:`` value."""
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)\s*:", text))
    return keys | set(re.findall(r"\b(?:type|job):\s*([A-Za-z_][A-Za-z0-9_]*)", text))


def _model_keys(model: type[BaseModel]) -> set[str]:
    """Field names of a pydantic model and of the models nested in it (lists and dicts included)."""
    out: set[str] = set()
    for name, field in model.model_fields.items():
        out.add(name)
        for tp in _types_in(field.annotation):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                out |= _model_keys(tp)
    return out


def _types_in(tp: Any) -> list[Any]:
    args = getattr(tp, "__args__", None) or ()
    meta = getattr(tp, "__metadata__", None)
    found = [tp]
    for a in args:
        found += _types_in(a)
    if meta is not None:
        found += _types_in(getattr(tp, "__origin__", None))
    return found


def test_example_loads_and_names_only_registered_plugins(config: BotConfig) -> None:
    assert config.exchange.mode == "paper" and config.strategies and config.risk.checks and config.schedules


def test_every_block_is_accepted_by_its_owner(config: BotConfig, registry: Registry) -> None:
    from botcore_exchange_binance.adapter import BinanceOptions
    from botcore_exchange_paper.faults import parse_specs
    from botcore_exchange_paper.options import ServerOptions
    from botcore_exchange_paper.plugin import paper_config_from_block

    from botcore.builtin_services import ServiceOptions
    from botcore.reconcile import ReconcilePolicy

    info = json.loads(
        (Path(app.__file__).parent / "data" / "exchangeinfo" / "exchangeInfo_2025-08-07.json").read_text()
    )
    instruments = {
        s["symbol"]: Instrument.from_exchange_info(s)
        for s in info["symbols"]
        if s["symbol"] in config.exchange.symbols
    }
    assert app.build_strategies(config, registry, instruments)
    assert len(app.build_risk_chain(config, registry)) == len(config.risk.checks)
    assert ServiceOptions.from_config(config).recovery_policy == "cancel"
    assert ReconcilePolicy.from_config(config).causes == {"fee rounding": "log"}
    BinanceOptions.from_mapping(config.exchange.options)
    options = dict(config.paper.options)
    assert options.pop("in_process") is False
    venue_cfg, port = paper_config_from_block({**config.paper.model_dump(), "options": options})
    assert port == 0 and venue_cfg.fill.queue_model == "power:3"
    ServerOptions.from_dict(venue_cfg.options)
    assert parse_specs(venue_cfg.faults or None) == []


def test_every_option_is_documented(registry: Registry) -> None:
    from botcore_exchange_binance.adapter import BinanceOptions
    from botcore_exchange_paper.config import FillConfig
    from botcore_exchange_paper.faults import KINDS
    from botcore_exchange_paper.options import ServerOptions
    from botcore_risk_basic import params as risk_params
    from botcore_strategy_marketmaker.params import MarketMakerParams

    from botcore.jobs import JOB_NAMES
    from botcore.reconcile import DEFAULT_POLICY

    expected: dict[str, set[str]] = {
        "config schema (botcore/config.py)": _model_keys(BotConfig),
        "marketmaker params": set(MarketMakerParams.model_fields),
        "risk check params": {
            name
            for cls in vars(risk_params).values()
            if isinstance(cls, type) and issubclass(cls, risk_params.CheckParams)
            for name in cls.model_fields
        },
        "risk check types": {
            t for t, owner in registry.providers["risk_checks"].items() if owner != THIRD_PARTY_SAMPLES
        },
        "jobs": set(JOB_NAMES),
        "binance adapter options": {f.name for f in dataclasses.fields(BinanceOptions)},
        "paper server options": {f.name for f in dataclasses.fields(ServerOptions)} | {"in_process"},
        "paper fill model": {f.name for f in dataclasses.fields(FillConfig)},
        "paper fault kinds": {k for k in KINDS if k != "clear"},
        "journal and recovery blocks": {
            "journal",
            "sample_every",
            "latency_every",
            "checkpoint_every",
            "recovery",
            "enabled",
            "policy",
            "grace",
        },
        "reconcile block": {"reconcile", "causes", "halt_clears_after", "trigger_cooldown", *DEFAULT_POLICY},
    }
    documented = _documented()
    missing = {what: sorted(keys - documented) for what, keys in expected.items() if keys - documented}
    assert not missing, f"config/example.yaml does not mention: {missing}"


def test_the_strictness_this_relies_on(tmp_path: Path) -> None:
    """A misspelt key in the example is refused with its line: the file documents real keys only."""
    text = EXAMPLE.read_text(encoding="utf-8").replace("  status_every: 2s", "  status_evry: 2s")
    with pytest.raises(ConfigError, match=r"status_evry.*did you mean 'status_every'"):
        config_from_text(text, source="example.yaml")
