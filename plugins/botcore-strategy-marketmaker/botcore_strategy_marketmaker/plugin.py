"""Entry point ``marketmaker``: registers the top-of-book market maker with botcore.

Registered as a default (``trylast``): an installed plugin registering ``marketmaker`` itself
replaces this one, which is how a user swaps in a patched strategy without forking.
"""

from __future__ import annotations

from botcore import hookimpl
from botcore.hookspecs import Register

from botcore_strategy_marketmaker.strategy import make_strategy


@hookimpl(trylast=True)
def botcore_register_strategies(register: Register) -> None:
    register("marketmaker", make_strategy)
