"""Paper accounts and the ledger that moves funds between them.

Every movement is a transfer between two accounts (or between free and locked of one), in integer
units of 10**-8, so for every asset the sum over users + ``market`` + ``fees`` never changes: that
is the conservation invariant tests/paper/test_conservation.py checks. ``market`` is the recorded
market as a counterparty; its balances are a signed net flow (it may go negative: it stands for
the outside world). User and fee balances never go negative: funds are locked at acceptance, so a
fill can never fail for lack of funds (hummingbot#5318).
"""

from __future__ import annotations

from decimal import Decimal

from botcore.model import Balance
from botcore_exchange_paper.filters import fmt

UNIT_DP = 8
"""All Binance spot asset balances have 8 decimals."""


class InsufficientFunds(Exception):
    """Raised before anything moved; the venue turns it into -2010."""


class Account:
    """One account: credentials plus ``free``/``locked`` per asset in integer units."""

    __slots__ = ("api_key", "_api_secret", "uid", "kind", "free", "locked", "update_time", "trades_count")

    def __init__(self, api_key: str, api_secret: str, uid: int, kind: str = "user") -> None:
        self.api_key = api_key
        self._api_secret = api_secret
        self.uid = uid
        self.kind = kind
        self.free: dict[str, int] = {}
        self.locked: dict[str, int] = {}
        self.update_time = 0
        self.trades_count = 0

    @property
    def api_secret(self) -> str:
        return self._api_secret

    @property
    def balances(self) -> dict[str, Balance]:
        """Exact balances as Decimals (asset -> Balance)."""
        out = {}
        for asset in self.assets():
            out[asset] = Balance(
                asset,
                Decimal(self.free.get(asset, 0)).scaleb(-UNIT_DP),
                Decimal(self.locked.get(asset, 0)).scaleb(-UNIT_DP),
            )
        return out

    def assets(self) -> list[str]:
        seen = dict.fromkeys(self.free)
        seen.update(dict.fromkeys(self.locked))
        return list(seen)

    def balance_json(self, asset: str) -> dict[str, str]:
        return {"asset": asset, "free": fmt(self.free.get(asset, 0)), "locked": fmt(self.locked.get(asset, 0))}

    def __repr__(self) -> str:  # never the secret
        return f"Account(api_key={self.api_key!r}, uid={self.uid}, kind={self.kind!r})"


class Ledger:
    """All accounts plus the two internal ones; records which (account, asset) changed per action."""

    def __init__(self) -> None:
        self.users: dict[str, Account] = {}
        self.market = Account("", "", 0, kind="market")
        self.fees = Account("", "", 0, kind="fees")
        self._next_uid = 354937868
        self.changed: dict[Account, dict[str, None]] = {}

    # --- accounts ---------------------------------------------------------------------------------
    def add(self, api_key: str, api_secret: str, balances: dict[str, Decimal]) -> Account:
        if api_key in self.users:
            raise ValueError("an account with this api_key exists")
        acct = Account(api_key, api_secret, self._next_uid)
        self._next_uid += 1
        for asset, amount in balances.items():
            units = Decimal(amount).scaleb(UNIT_DP)
            if units != units.to_integral_value() or units < 0:
                raise ValueError(f"balance of {asset} must be >= 0 with at most {UNIT_DP} decimals")
            acct.free[asset.upper()] = int(units)
            acct.locked[asset.upper()] = 0
            # Deposits come from the market account, so the invariant holds from the first action on.
            self.market.free[asset.upper()] = self.market.free.get(asset.upper(), 0) - int(units)
        self.users[api_key] = acct
        return acct

    def all_accounts(self) -> list[Account]:
        return [*self.users.values(), self.market, self.fees]

    def total(self, asset: str) -> int:
        return sum(a.free.get(asset, 0) + a.locked.get(asset, 0) for a in self.all_accounts())

    def assets(self) -> set[str]:
        out: set[str] = set()
        for a in self.all_accounts():
            out.update(a.free)
            out.update(a.locked)
        return out

    # --- movements (all in units) -------------------------------------------------------------
    def _mark(self, acct: Account, asset: str) -> None:
        if acct.kind == "user":
            self.changed.setdefault(acct, {})[asset] = None

    def can_lock(self, acct: Account, asset: str, amount: int) -> bool:
        return acct.free.get(asset, 0) >= amount

    def lock(self, acct: Account, asset: str, amount: int) -> None:
        if amount < 0 or acct.free.get(asset, 0) < amount:
            raise InsufficientFunds(asset)
        acct.free[asset] = acct.free.get(asset, 0) - amount
        acct.locked[asset] = acct.locked.get(asset, 0) + amount
        self._mark(acct, asset)

    def unlock(self, acct: Account, asset: str, amount: int) -> None:
        if amount < 0 or acct.locked.get(asset, 0) < amount:
            raise AssertionError(f"unlock of {amount} {asset} exceeds locked")  # a venue bug, never user error
        acct.locked[asset] -= amount
        acct.free[asset] = acct.free.get(asset, 0) + amount
        self._mark(acct, asset)

    def pay(self, src: Account, asset: str, amount: int, dst: Account, *, from_locked: bool) -> None:
        """Move ``amount`` from ``src`` (its locked or free part) to ``dst``'s free part."""
        if amount < 0:
            raise AssertionError("negative transfer")
        if amount == 0:
            return
        bucket = src.locked if from_locked else src.free
        if src.kind != "market" and bucket.get(asset, 0) < amount:
            raise AssertionError(f"{src!r} short of {asset}: {bucket.get(asset, 0)} < {amount}")
        bucket[asset] = bucket.get(asset, 0) - amount
        src.locked.setdefault(asset, 0)
        src.free.setdefault(asset, 0)
        dst.free[asset] = dst.free.get(asset, 0) + amount
        dst.locked.setdefault(asset, 0)
        self._mark(src, asset)
        self._mark(dst, asset)

    def take_changes(self) -> dict[Account, list[str]]:
        """Assets changed per user account since the last call (for outboundAccountPosition)."""
        out = {acct: list(assets) for acct, assets in self.changed.items()}
        self.changed = {}
        return out
