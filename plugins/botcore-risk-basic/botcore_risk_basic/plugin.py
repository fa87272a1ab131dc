"""Entry point ``risk_basic``: registers the built-in risk checks with botcore.

Each check is registered under its type name (``max_position``, ``drawdown``, ...), as a default
(``trylast``) so an installed plugin registering the same name replaces it.
"""

from __future__ import annotations

from botcore import hookimpl
from botcore.hookspecs import Register

from botcore_risk_basic.checks import CHECKS


@hookimpl(trylast=True)
def botcore_register_risk_checks(register: Register) -> None:
    for cls in CHECKS:
        register(cls.kind, cls.from_params)
