"""botcore-strategy-marketmaker: the top-of-book market maker (strategy type ``marketmaker``)."""

from botcore_strategy_marketmaker.params import MarketMakerParams, ParamsError, parse_params
from botcore_strategy_marketmaker.strategy import MarketMaker, compute_quotes, make_strategy

__all__ = [
    "MarketMaker",
    "MarketMakerParams",
    "ParamsError",
    "compute_quotes",
    "make_strategy",
    "parse_params",
]
