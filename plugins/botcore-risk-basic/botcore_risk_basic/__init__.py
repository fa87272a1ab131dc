"""botcore-risk-basic: the built-in risk checks and the chain semantics they are tested under."""

from botcore_risk_basic.chain import RiskChain
from botcore_risk_basic.checks import (
    CHECKS,
    BasicCheck,
    DailyLossCheck,
    DrawdownCheck,
    MaxInventoryValueCheck,
    MaxOpenOrdersCheck,
    MaxOrderNotionalCheck,
    MaxPositionCheck,
    OrderRateCheck,
    PriceBandCheck,
    StaleDataCheck,
)
from botcore_risk_basic.params import ParamsError
from botcore_risk_basic.pnl import EquityTracker

__all__ = [
    "CHECKS",
    "BasicCheck",
    "DailyLossCheck",
    "DrawdownCheck",
    "EquityTracker",
    "MaxInventoryValueCheck",
    "MaxOpenOrdersCheck",
    "MaxOrderNotionalCheck",
    "MaxPositionCheck",
    "OrderRateCheck",
    "ParamsError",
    "PriceBandCheck",
    "RiskChain",
    "StaleDataCheck",
]
