"""Binance error answers raised by the venue and rendered by the server.

Messages are the exact strings Binance sends (clients such as ccxt map some of them by text), so
every error the venue can produce is built here from one helper or constant.
"""

from __future__ import annotations

from typing import Any

DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
INTEGER_RANGE = r"^[0-9]{1,20}$"
CLIENT_ID_RANGE = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"

INSUFFICIENT_BALANCE = "Account has insufficient balance for requested action."
WOULD_MATCH = "Order would immediately match and take."
DUPLICATE_ORDER = "Duplicate order sent."
UNKNOWN_ORDER = "Unknown order sent."
NO_SUCH_ORDER = "Order does not exist."
UNSUPPORTED_COMBINATION = "Unsupported order combination"
CANCEL_RESTRICTED = "Order was not canceled due to cancel restrictions."
NO_LIQUIDITY = "Order book liquidity is less than LOT_SIZE filter minimum quantity."
MARKET_CLOSED = "Market is closed."
STP_NOT_ALLOWED = "This symbol does not allow the specified self-trade prevention mode."
CANCEL_REPLACE_FAILED = "Order cancel-replace failed."
CANCEL_REPLACE_PARTIAL = "Order cancel-replace partially failed."


class BinanceError(Exception):
    """A Binance error answer: HTTP status + code + msg (+ optional data for cancelReplace)."""

    def __init__(self, code: int, msg: str, http_status: int = 400, data: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.data = data

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "msg": self.msg}
        if self.data is not None:
            out["data"] = self.data
        return out

    def short(self) -> dict[str, Any]:
        """``{"code", "msg"}`` only: the shape nested inside cancelReplace ``data``."""
        return {"code": self.code, "msg": self.msg}

    def __repr__(self) -> str:
        return f"BinanceError({self.code}, {self.msg!r}, http_status={self.http_status})"


def mandatory(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def either(first: str, second: str) -> BinanceError:
    return BinanceError(-1102, f"Param '{first}' or '{second}' must be sent, but both were empty/null!")


def illegal_chars(name: str, legal: str = DECIMAL_RANGE) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def too_much_precision(name: str) -> BinanceError:
    return BinanceError(-1111, f"Parameter '{name}' has too much precision.")


def bad_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_type() -> BinanceError:
    return BinanceError(-1116, "Invalid orderType.")


def invalid_side() -> BinanceError:
    return BinanceError(-1117, "Invalid side.")


def invalid_tif() -> BinanceError:
    return BinanceError(-1115, "Invalid timeInForce.")


def filter_failure(name: str) -> BinanceError:
    return BinanceError(-1013, f"Filter failure: {name}")


def rejected(msg: str) -> BinanceError:
    """-2010 NEW_ORDER_REJECTED with one of the engine messages."""
    return BinanceError(-2010, msg)


def cancel_rejected(msg: str = UNKNOWN_ORDER) -> BinanceError:
    return BinanceError(-2011, msg)


def no_such_order() -> BinanceError:
    return BinanceError(-2013, NO_SUCH_ORDER)
