"""Symbol rules from exchangeInfo, integer money units, and new-order parameter validation.

Units: a price is an int of ``10**-pd`` (``pd`` = the symbol's quote precision, 8 on Binance, so a
recorded "61837.63000000" is simply its digits), a quantity an int of ``10**-qd`` (base precision),
a quote amount an int of ``10**-quote_dp``. Integer arithmetic keeps every balance exact.

Validation follows the order Binance answers in (BINANCE_PROTOCOL.md 3.6, 4, 5, 11.7):
-1102 missing, -1100 malformed numbers, -1121 symbol, -1116/-1117/-1115 enums, -1106 extra params,
-1111 precision, then the symbol's filters in ``filters[]`` order (-1013). Engine checks (balance,
post-only crossing, duplicate client id) live in the venue because they need live state.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botcore.model import decimals_of
from botcore_exchange_paper import errors as E

DECIMAL_RE = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
INTEGER_RE = re.compile(r"^[0-9]{1,20}$")
CLIENT_ID_RE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")

ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
SUPPORTED_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET")
SIDES = ("BUY", "SELL")
TIFS = ("GTC", "IOC", "FOK")
RESP_TYPES = ("ACK", "RESULT", "FULL")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT", "TRANSFER")


def to_units(s: str, dp: int) -> int | None:
    """Exact ``int(s * 10**dp)`` for a plain decimal string; None if it needs more than ``dp`` decimals."""
    whole, _, frac = s.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > dp:
        return None
    scale = 10**dp
    return int(whole or "0") * scale + (int(frac.ljust(dp, "0")) if frac else 0)


def fmt(units: int, dp: int = 8) -> str:
    """Binance's padded decimal string: ``fmt(123, 8) == "0.00000123"``; never scientific notation."""
    if dp == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    q, r = divmod(abs(units), 10**dp)
    return f"{sign}{q}.{r:0{dp}d}"


def _units(value: Any, dp: int) -> int:
    u = to_units(format(value, "f") if isinstance(value, Decimal) else str(value), dp)
    if u is None:
        raise ValueError(f"{value!r} has more than {dp} decimals")
    return u


class SymbolSpec:
    """One symbol's exchangeInfo entry turned into integer rules (read-only after construction)."""

    def __init__(self, info: Mapping[str, Any]) -> None:
        self.info = info
        self.symbol: str = info["symbol"]
        self.base: str = info["baseAsset"]
        self.quote: str = info["quoteAsset"]
        self.status: str = info.get("status", "TRADING")
        self.base_dp = int(info.get("baseAssetPrecision", 8))
        self.quote_dp = int(info.get("quoteAssetPrecision", info.get("quotePrecision", 8)))
        self.base_commission_dp = int(info.get("baseCommissionPrecision", self.base_dp))
        self.quote_commission_dp = int(info.get("quoteCommissionPrecision", self.quote_dp))
        self.filters: list[dict[str, Any]] = [dict(f) for f in info.get("filters", [])]
        by_type = {f["filterType"]: f for f in self.filters}
        pf = by_type.get("PRICE_FILTER", {})
        tick = Decimal(pf.get("tickSize", "0"))
        self.pd = max(self.quote_dp, decimals_of(tick) if tick else 0)
        self.qd = self.base_dp
        self.price_scale = 10**self.pd
        self.qty_scale = 10**self.qd
        self.quote_div = 10 ** (self.pd + self.qd - self.quote_dp)
        """price_u * qty_u / quote_div = quote units."""
        self.tick_u = _units(tick, self.pd)
        self.min_price_u = _units(pf.get("minPrice", "0"), self.pd)
        self.max_price_u = _units(pf.get("maxPrice", "0"), self.pd)
        lot = by_type.get("LOT_SIZE", {})
        self.step_u = _units(lot.get("stepSize", "0"), self.qd)
        self.min_qty_u = _units(lot.get("minQty", "0"), self.qd)
        self.max_qty_u = _units(lot.get("maxQty", "0"), self.qd)
        self.lot_u = self.step_u or 1
        """The fill granularity (rule A1 rounds queue overshoot down to whole lots)."""
        self.order_types: tuple[str, ...] = tuple(info.get("orderTypes", SUPPORTED_TYPES))
        self.default_stp: str = info.get("defaultSelfTradePreventionMode", "NONE")
        self.allowed_stp: tuple[str, ...] = tuple(info.get("allowedSelfTradePreventionModes", ()))
        self.quote_order_qty_market_allowed = bool(info.get("quoteOrderQtyMarketAllowed", True))
        self.cancel_replace_allowed = bool(info.get("cancelReplaceAllowed", True))
        self._pcache: dict[str, int] = {}
        self._pstr: dict[int, str] = {}
        self._qcache: dict[str, int] = {}

    # --- units ----------------------------------------------------------------------------------
    def price_u(self, s: str) -> int:
        """Recorded/feed price string -> units, memoised (prices repeat a lot on the wire)."""
        u = self._pcache.get(s)
        if u is None:
            pd = self.pd
            if len(s) > pd and s[-pd - 1] == ".":  # Binance prints exactly pd decimals
                u = int(s.replace(".", ""))
            else:
                v = to_units(s, pd)
                if v is None:
                    raise ValueError(f"{self.symbol}: price {s!r} finer than {pd} decimals")
                u = v
            if len(self._pcache) > 200_000:
                self._pcache.clear()
                self._pstr.clear()
            self._pcache[s] = u
            self._pstr.setdefault(u, s)
        return u

    def qty_u(self, s: str) -> int:
        """Feed quantity string -> units, memoised (callers try ``_qcache`` first on hot paths)."""
        qd = self.qd
        if len(s) > qd and s[-qd - 1] == ".":
            u = int(s.replace(".", ""))
        else:
            v = to_units(s, qd)
            if v is None:
                raise ValueError(f"{self.symbol}: quantity {s!r} finer than {qd} decimals")
            u = v
        if len(self._qcache) > 500_000:
            self._qcache.clear()
        self._qcache[s] = u
        return u

    def fmt_price(self, u: int) -> str:
        s = self._pstr.get(u)
        return s if s is not None else fmt(u, self.pd)

    def fmt_qty(self, u: int) -> str:
        return fmt(u, self.qd)

    def fmt_quote(self, u: int) -> str:
        return fmt(u, self.quote_dp)

    def quote_floor(self, price_u: int, qty_u: int) -> int:
        """Quote amount of a trade, truncated to the quote precision (what moves between accounts)."""
        return price_u * qty_u // self.quote_div

    def quote_ceil(self, price_u: int, qty_u: int) -> int:
        """Quote amount locked for a BUY (rounded up so the lock always covers the fills)."""
        return -(-price_u * qty_u // self.quote_div)

    def qty_for_quote(self, price_u: int, quote_u: int) -> int:
        """Largest whole-lot quantity whose cost at ``price_u`` is at most ``quote_u``."""
        q = quote_u * self.quote_div // price_u
        return q - q % self.lot_u

    def notional_ok(self, price_u: int, qty_u: int, limit_str: str, above: bool) -> bool:
        limit_scaled = _units(limit_str, self.quote_dp) * self.quote_div
        value = price_u * qty_u
        return value >= limit_scaled if above else value <= limit_scaled


@dataclass(slots=True)
class NewOrderParams:
    """A validated new-order request (units are the symbol's integer units)."""

    spec: SymbolSpec
    side: str
    type: str
    tif: str
    price_u: int
    qty_u: int
    quote_qty_u: int
    client_id: str | None
    resp_type: str
    stp: str
    strategy_id: int | None
    strategy_type: int | None


def _present(params: Mapping[str, str], name: str) -> bool:
    v = params.get(name)
    return v is not None and v != ""


def parse_new_order(
    params: Mapping[str, str],
    specs: Mapping[str, SymbolSpec],
    *,
    open_on_symbol: Callable[[str], int],
    open_total: Callable[[], int],
    avg_price_u: Callable[[str], int | None],
    exchange_filters: list[dict[str, Any]] | None = None,
) -> NewOrderParams:
    """Validate a new-order request exactly in Binance's order; raise BinanceError on the first failure."""
    # -1102: mandatory parameters
    for name in ("symbol", "side", "type"):
        if not _present(params, name):
            raise E.mandatory(name)
    otype = params["type"]
    if otype == "LIMIT":
        for name in ("timeInForce", "quantity", "price"):
            if not _present(params, name):
                raise E.mandatory(name)
    elif otype == "LIMIT_MAKER":
        for name in ("quantity", "price"):
            if not _present(params, name):
                raise E.mandatory(name)
    elif otype == "MARKET":
        if not _present(params, "quantity") and not _present(params, "quoteOrderQty"):
            raise E.either("quantity", "quoteOrderQty")
    elif otype in ("STOP_LOSS", "TAKE_PROFIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        if not _present(params, "quantity"):
            raise E.mandatory("quantity")
        if not _present(params, "stopPrice") and not _present(params, "trailingDelta"):
            raise E.either("stopPrice", "trailingDelta")
    # -1100: malformed numbers
    for name in ("quantity", "price", "quoteOrderQty", "stopPrice", "icebergQty"):
        if _present(params, name) and not DECIMAL_RE.match(params[name]):
            raise E.illegal_chars(name)
    for name in ("strategyId", "strategyType", "trailingDelta"):
        if _present(params, name) and not INTEGER_RE.match(params[name]):
            raise E.illegal_chars(name, E.INTEGER_RANGE)
    # -1121
    spec = specs.get(params["symbol"])
    if spec is None:
        raise E.bad_symbol()
    # -1116 / -1117 / -1115 and other enums
    if otype not in ORDER_TYPES or otype not in spec.order_types:
        raise E.invalid_type()
    side = params["side"]
    if side not in SIDES:
        raise E.invalid_side()
    tif_raw = params.get("timeInForce") or ""
    if tif_raw and tif_raw not in TIFS:
        raise E.invalid_tif()
    if spec.status != "TRADING":
        raise E.BinanceError(-1013, E.MARKET_CLOSED)
    resp_type = params.get("newOrderRespType") or ("FULL" if otype in ("LIMIT", "MARKET") else "ACK")
    if resp_type not in RESP_TYPES:
        raise E.illegal_chars("newOrderRespType", ", ".join(RESP_TYPES))
    # -1106: parameters sent when not required
    if otype in ("LIMIT_MAKER", "MARKET") and tif_raw:
        raise E.not_required("timeInForce")
    if otype == "MARKET":
        if _present(params, "price"):
            raise E.not_required("price")
        if _present(params, "quantity") and _present(params, "quoteOrderQty"):
            raise E.not_required("quoteOrderQty")
    elif _present(params, "quoteOrderQty"):
        raise E.not_required("quoteOrderQty")
    if otype in ("LIMIT", "LIMIT_MAKER", "MARKET") and _present(params, "stopPrice"):
        raise E.not_required("stopPrice")
    if otype not in SUPPORTED_TYPES or _present(params, "icebergQty") or _present(params, "trailingDelta"):
        # Stop/take-profit/iceberg/trailing orders are valid on Binance but not simulated here.
        raise E.rejected(E.UNSUPPORTED_COMBINATION)
    if otype == "MARKET" and _present(params, "quoteOrderQty") and not spec.quote_order_qty_market_allowed:
        raise E.rejected("Quote order qty market orders are not support for this symbol.")
    # -1111: precision
    qty_u = price_u = quote_qty_u = 0
    if _present(params, "quantity"):
        u = to_units(params["quantity"], spec.qd)
        if u is None:
            raise E.too_much_precision("quantity")
        qty_u = u
    if _present(params, "price"):
        u = to_units(params["price"], spec.pd)
        if u is None:
            raise E.too_much_precision("price")
        price_u = u
    if _present(params, "quoteOrderQty"):
        u = to_units(params["quoteOrderQty"], spec.quote_dp)
        if u is None:
            raise E.too_much_precision("quoteOrderQty")
        quote_qty_u = u
    stp = params.get("selfTradePreventionMode") or spec.default_stp
    if stp not in STP_MODES or (stp != "NONE" and stp not in spec.allowed_stp and stp != spec.default_stp):
        raise E.BinanceError(-1013, E.STP_NOT_ALLOWED)
    if stp == "TRANSFER":  # needs trade groups, which paper accounts do not have: same-account TRANSFER == DECREMENT
        stp = "DECREMENT"
    tif = tif_raw or "GTC"
    req = NewOrderParams(
        spec=spec,
        side=side,
        type=otype,
        tif=tif,
        price_u=price_u,
        qty_u=qty_u,
        quote_qty_u=quote_qty_u,
        client_id=params.get("newClientOrderId") or None,
        resp_type=resp_type,
        stp=stp,
        strategy_id=int(params["strategyId"]) if _present(params, "strategyId") else None,
        strategy_type=int(params["strategyType"]) if _present(params, "strategyType") else None,
    )
    check_filters(req, open_on_symbol(spec.symbol), avg_price_u(spec.symbol))
    if exchange_filters:
        for f in exchange_filters:
            if f.get("filterType") == "EXCHANGE_MAX_NUM_ORDERS" and open_total() >= int(f["maxNumOrders"]):
                raise E.filter_failure("EXCHANGE_MAX_NUM_ORDERS")
    return req


def check_filters(req: NewOrderParams, open_orders: int, avg_u: int | None) -> None:
    """Apply the symbol filters in exchangeInfo order; raise -1013 ``Filter failure: X`` on the first failure."""
    spec = req.spec
    is_market = req.type == "MARKET"
    price = req.price_u
    qty = req.qty_u
    for f in spec.filters:
        ft = f["filterType"]
        if ft == "PRICE_FILTER":
            if is_market:
                continue
            lo = _units(f.get("minPrice", "0"), spec.pd)
            hi = _units(f.get("maxPrice", "0"), spec.pd)
            tick = _units(f.get("tickSize", "0"), spec.pd)
            if (lo and price < lo) or (hi and price > hi) or (tick and price % tick) or price <= 0:
                raise E.filter_failure(ft)
        elif ft in ("LOT_SIZE", "MARKET_LOT_SIZE"):
            if ft == "MARKET_LOT_SIZE" and not is_market:
                continue
            if is_market and req.quote_qty_u:
                continue  # sized by the engine from quoteOrderQty (checked after sizing)
            lo = _units(f.get("minQty", "0"), spec.qd)
            hi = _units(f.get("maxQty", "0"), spec.qd)
            step = _units(f.get("stepSize", "0"), spec.qd)
            if (lo and qty < lo) or (hi and qty > hi) or (step and qty % step) or qty <= 0:
                raise E.filter_failure(ft)
        elif ft in ("PERCENT_PRICE", "PERCENT_PRICE_BY_SIDE"):
            if is_market or avg_u is None:
                continue
            if ft == "PERCENT_PRICE":
                up, down = f["multiplierUp"], f["multiplierDown"]
            elif req.side == "BUY":
                up, down = f["bidMultiplierUp"], f["bidMultiplierDown"]
            else:
                up, down = f["askMultiplierUp"], f["askMultiplierDown"]
            p = Decimal(price)
            if p > Decimal(avg_u) * Decimal(up) or p < Decimal(avg_u) * Decimal(down):
                raise E.filter_failure(ft)
        elif ft in ("NOTIONAL", "MIN_NOTIONAL"):
            if ft == "MIN_NOTIONAL":
                check_min, check_max = (not is_market or bool(f.get("applyToMarket", True))), False
            else:
                check_min = not is_market or bool(f.get("applyMinToMarket", True))
                check_max = not is_market or bool(f.get("applyMaxToMarket", False))
            if not (check_min or check_max):
                continue
            if is_market and req.quote_qty_u:
                value_scaled = req.quote_qty_u * spec.quote_div
            elif is_market:
                if avg_u is None:
                    continue
                value_scaled = avg_u * qty
            else:
                value_scaled = price * qty
            lo = _units(f.get("minNotional", "0"), spec.quote_dp) * spec.quote_div
            hi = _units(f.get("maxNotional", "0"), spec.quote_dp) * spec.quote_div
            if (check_min and value_scaled < lo) or (check_max and hi and value_scaled > hi):
                raise E.filter_failure(ft)
        elif ft == "MAX_NUM_ORDERS" and open_orders >= int(f["maxNumOrders"]):
            raise E.filter_failure(ft)
        # ICEBERG_PARTS, TRAILING_DELTA, MAX_NUM_ALGO_ORDERS, ...: no iceberg/stop orders here -> pass.
