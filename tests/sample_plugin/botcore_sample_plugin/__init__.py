"""A sample botcore plugin: one strategy, one risk check, one command.

It is what the tutorial in plugins/README.md builds, kept small enough to read in one go.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from botcore import hookimpl
from botcore.config import ConfigError
from botcore.model import BookTop, ExecutionReport, Fill, Instrument, OrderRequest, Quote

__version__ = "0.1.0"


class HoldStrategy:
    """Quotes nothing: ``on_top`` returns None ("leave orders as they are")."""

    def __init__(self, name: str, params: Mapping[str, Any], instruments: Mapping[str, Instrument]) -> None:
        unknown = set(params) - {"note"}
        if unknown:
            raise ConfigError(f"unknown parameter(s): {', '.join(sorted(unknown))}", key=sorted(unknown)[0])
        self.name = name
        self.symbols: Sequence[str] = list(instruments)
        self.note = str(params.get("note", ""))

    def on_top(self, ctx: Any, top: BookTop) -> Sequence[Quote] | None:
        return None

    def on_fill(self, ctx: Any, fill: Fill) -> None:
        pass

    def on_order_update(self, ctx: Any, report: ExecutionReport) -> None:
        pass


class MaxQty:
    """Vetoes any order larger than ``params.max_qty``."""

    name = "sample-max-qty"

    def __init__(self, params: Mapping[str, Any]) -> None:
        try:
            self.max_qty = Decimal(str(params["max_qty"]))
        except KeyError:
            raise ConfigError("required parameter is missing", key="max_qty") from None

    def check(self, order: OrderRequest, ctx: Any) -> str | None:
        if order.qty > self.max_qty:
            return f"qty {order.qty} > max_qty {self.max_qty}"
        return None


def _hello(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Say hello (sample plugin command)."""
    parser.add_argument("--name", default="world")
    parser.add_argument("--exit-code", type=int, default=0)

    def run(args: argparse.Namespace) -> int:
        print(f"hello {args.name} from botcore-sample-plugin {__version__}")
        return int(args.exit_code)

    return run


@hookimpl
def botcore_register_strategies(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("sample-hold", HoldStrategy)


@hookimpl
def botcore_register_risk_checks(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("sample-max-qty", MaxQty)


@hookimpl
def botcore_register_commands(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("sample-hello", _hello)
