"""botcore plugin: registers the ``binance`` exchange adapter (entry point group ``botcore``)."""

from __future__ import annotations

from typing import Any

from botcore import hookimpl
from botcore.hookspecs import Register


def make_adapter(config: Any, endpoints: Any = None) -> Any:
    """Factory the host calls: ``factory(config, endpoints) -> BinanceAdapter``.

    Imported lazily so ``botcore plugins`` can list the plugin without loading python-binance.
    """
    from botcore_exchange_binance.adapter import BinanceAdapter

    return BinanceAdapter.from_config(config, endpoints)


@hookimpl
def botcore_register_exchanges(register: Register) -> None:
    register("binance", make_adapter)
