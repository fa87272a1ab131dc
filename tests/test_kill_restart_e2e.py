"""SIGKILL the whole bot mid-run, restart it, and hold what it believes against the exchange.

The paper exchange runs in this process (``start_embedded``), so it outlives the bot; a thread of
the test steps its market, which lets the test pause the market while the bot is down and being
recovered (the exchange then changes only by what the bot does). The bot is a real
``python -m botcore run`` process in the testnet shape (URLs and key of that exchange, the market
maker, a journal in ``tmp_path``, recovery policy ``adopt`` or ``cancel``).

Per case (seeded: when the kill lands and how long the market runs while the bot is dead):

1. start the bot; wait for a fill and a two-sided quote at the venue; SIGKILL a random moment
   later (the bot may be mid-requote, mid-send or idle);
2. the market runs on until one of the dead bot's orders fills (a fill only the venue knows) or
   a seeded number of events passed, then stands still; note the venue;
3. restart with the same config and journal; the bot logs ``recovery: state before quoting:``
   (``botcore.recovery.state_summary``) before its engine starts. Asserted: until then it sent
   nothing but the recovery's cancels (with the market still, no depth diff arrives, so the bot
   cannot sync a book, let alone quote), and its tracked orders, balances and position equal
   the venue's (adopt: the killed run's orders are tracked; cancel: they were cancelled; the
   position includes the killed run's fills and the one it missed);
4. resume the market; the bot quotes again; SIGTERM; exit 0 and nothing of ours left open.

Throughout, on the exchange's own thread: every client order id reaches the venue once, and the
bot never has more orders resting than the strategy's cap, nor two at the same side and price.
"""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botcore_exchange_paper.config import AccountSpec, PaperConfig
from botcore_exchange_paper.embedded import EmbeddedPaper, start_embedded
from e2e_support import Proc

from botcore.journal import Journal

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

SYMBOL = "BTCUSDT"
KEY, SECRET = "kill-restart-key", "kill-restart-secret"
START = {"USDT": Decimal("10000"), "BTC": Decimal("0.2")}
CAP = 2  # the market maker's max_live_orders: 2 x levels (levels: 1)
STATE_LINE = "recovery: state before quoting: "

STRATEGY = """
strategies:
  - name: mm
    type: marketmaker
    params:
      amount: "0.002"
      bid_distance: join
      ask_distance: join
      levels: 1
      post_only: true
      requote_tolerance_bps: "0.2"
      min_requote_interval: 0.1
      fill_delay: 300ms
      max_position: "0.02"
risk:
  checks:
    - {type: max_order_notional, params: {max_notional: "500"}}
    - {type: max_position, params: {max_position: "0.03"}}
    - {type: order_rate, params: {per_second: 12, per_10s: 90}}
"""


# ------------------------------------------------------------------------------------------------
# The exchange side
# ------------------------------------------------------------------------------------------------


class Tap:
    """Wraps the venue's order actions and listens to its user events, on the venue's thread.

    ``sent`` is every new client order id that reached the venue (placements and the new leg of
    cancel-replaces, accepted or not); ``actions`` every order action as ``(kind, cid)``;
    ``violations`` every moment our resting orders broke the cap or doubled a side and price.
    """

    def __init__(self, venue: Any, api_key: str) -> None:
        self.venue = venue
        self.account = venue.account_for_key(api_key)
        self.sent: list[str] = []
        self.actions: list[tuple[str, str]] = []
        self.violations: list[str] = []
        self.fills = 0
        self.max_open = 0
        for name, new_key, old_key in (
            ("place_order", "newClientOrderId", ""),
            ("cancel_order", "", "origClientOrderId"),
            ("cancel_replace", "newClientOrderId", "cancelOrigClientOrderId"),
            ("cancel_open_orders", "", ""),
        ):
            setattr(venue, name, self._wrap(name, getattr(venue, name), new_key, old_key))
        venue.add_listener(self)

    def _wrap(self, name: str, fn: Callable[..., Any], new_key: str, old_key: str) -> Callable[..., Any]:
        def wrapped(account: Any, params: dict[str, str], *args: Any, **kw: Any) -> Any:
            if account is self.account and not kw.get("test"):
                cid = params.get(new_key, "") if new_key else ""
                if cid:
                    self.sent.append(cid)
                self.actions.append((name, (params.get(old_key, "") if old_key else "") or cid))
            try:
                return fn(account, params, *args, **kw)
            finally:
                self._check(name)

        return wrapped

    def _check(self, when: str) -> None:
        mine = self.open_orders()
        self.max_open = max(self.max_open, len(mine))
        if len(mine) > CAP:
            self.violations.append(f"{when}: {len(mine)} resting > cap {CAP}: {mine}")
        levels = [(o["side"], o["price"]) for o in mine]
        if len(set(levels)) != len(levels):
            self.violations.append(f"{when}: two resting orders at one side and price: {mine}")

    def open_orders(self) -> list[dict[str, Any]]:
        return self.venue.open_orders(self.account, SYMBOL)

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {
            b["asset"]: (Decimal(b["free"]), Decimal(b["locked"]))
            for b in self.venue.account_info(self.account)["balances"]
        }

    # VenueListener
    def on_market(self, stream: str, payload: bytes) -> None:
        return None

    def on_user(self, api_key: str, event: dict[str, Any]) -> None:
        if api_key != self.account.api_key or event.get("e") != "executionReport":
            return
        if event["x"] == "TRADE":
            self.fills += 1
        self._check(f"report {event['x']} {event['c']}")


class Market:
    """Steps the recording from a thread of the test (about 8x real time) until paused."""

    def __init__(self, paper: EmbeddedPaper) -> None:
        self.paper = paper
        self._on = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="test-market", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._on.wait(0.05):
                continue
            with self._lock:
                if self._on.is_set() and not self._stop.is_set():
                    self.paper.step(5)
            time.sleep(0.004)

    def resume(self) -> None:
        self._on.set()

    def pause(self) -> None:
        """Returns once no step runs any more: from here the market is still."""
        self._on.clear()
        with self._lock:
            pass

    def close(self) -> None:
        self._stop.set()
        self._on.set()
        self._thread.join(5)


@pytest.fixture
def exchange() -> Iterator[tuple[EmbeddedPaper, Tap, Market]]:
    config = PaperConfig(accounts=[AccountSpec(KEY, SECRET, dict(START))], speed=0)
    paper = start_embedded(config, run_market=False)
    market: Market | None = None
    try:
        tap = paper.call(lambda: Tap(paper.venue, KEY))
        market = Market(paper)
        yield paper, tap, market
    finally:
        if market is not None:
            market.close()
        paper.close()


# ------------------------------------------------------------------------------------------------
# The bot process
# ------------------------------------------------------------------------------------------------


def start_bot(config: Path, cwd: Path) -> Proc:
    """``python -m botcore run CONFIG`` with the exchange's key and secret in its environment."""
    return Proc([sys.executable, "-m", "botcore", "run", str(config)], cwd, env={"KR_KEY": KEY, "KR_SECRET": SECRET})


def wait_until(pred: Callable[[], Any], timeout: float, what: str, bot: Proc) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        if bot.p.poll() is not None:
            raise AssertionError(f"the bot exited ({bot.p.returncode}) before {what}:\n{bot.text[-4000:]}")
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached in {timeout}s:\n{bot.text[-4000:]}")


def write_config(tmp_path: Path, paper: EmbeddedPaper, policy: str) -> tuple[Path, Path]:
    journal = tmp_path / "kr.sqlite"
    config = tmp_path / "kr.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            run: {{name: kr, journal: {journal}, log_level: INFO, status_every: 1s}}
            exchange:
              name: binance
              mode: testnet
              symbols: [{SYMBOL}]
              api_key: $env:KR_KEY
              api_secret: $env:KR_SECRET
              rest_url: {paper.rest_url}
              stream_url: {paper.stream_url}
              ws_api_url: {paper.ws_api_url}
              options: {{backoff_initial_s: 0.05, backoff_max_s: 0.5}}
            plugins:
              recovery: {{policy: {policy}, grace: 1s}}
            """
        )
        + STRATEGY
    )
    return config, journal


def run_prefixes(journal: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT id_prefix FROM runs ORDER BY id")]
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------------
# The test
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "seed"), [("adopt", 1), ("cancel", 2), ("adopt", 3), ("cancel", 4)])
def test_sigkill_then_restart_recovers_the_venue_state_before_quoting(
    tmp_path: Path, exchange: tuple[EmbeddedPaper, Tap, Market], policy: str, seed: int
) -> None:
    paper, tap, market = exchange
    rng = random.Random(seed)
    config, journal = write_config(tmp_path, paper, policy)

    # 1. trade, then SIGKILL at a random point ------------------------------------------------------
    market.resume()
    first = start_bot(config, tmp_path)
    try:
        wait_until(
            lambda: tap.fills and len(paper.call(tap.open_orders)) == CAP,
            40,
            "a fill, then a two-sided quote",
            first,
        )
        time.sleep(rng.uniform(0.0, 0.3))  # whatever the bot is doing now: requoting, sending, idle
        first.p.send_signal(signal.SIGKILL)
        assert first.finish(10) == -signal.SIGKILL
    finally:
        first.kill()
    market.pause()
    # The market runs on while the bot is dead, until one of its orders fills (a fill only the
    # venue knows of) or a seeded number of events passed; then it stands still until recovered.
    fills_at_kill = tap.fills
    for _ in range(rng.randint(20, 200)):
        paper.step(5)
        if tap.fills > fills_at_kill:
            break
    left = paper.call(tap.open_orders)
    (run1,) = run_prefixes(journal)
    assert all(o["clientOrderId"].startswith(run1) for o in left), left
    n_actions = len(tap.actions)

    # 2. restart: recovery, and the state it starts from ---------------------------------------------
    second = start_bot(config, tmp_path)
    try:
        line = second.wait_line(STATE_LINE, 30)
        second.wait_line("botcore: running", 10)
        state = json.loads(line.split(STATE_LINE, 1)[1])
        venue_open, balances = paper.call(lambda: (tap.open_orders(), tap.balances()))
        since = tap.actions[n_actions:]
        run2 = run_prefixes(journal)[-1]
        assert run2 != run1

        # (a) nothing but the recovery's own cancels reached the venue before that line
        if policy == "adopt":
            assert since == [], since
        else:
            assert sorted(cid for _, cid in since) == sorted(o["clientOrderId"] for o in left)
            assert {kind for kind, _ in since} <= {"cancel_order"}, since
        # (b) no orphan: what rests at the venue is exactly what the bot tracks
        expected = left if policy == "adopt" else []
        assert sorted(o["clientOrderId"] for o in venue_open) == sorted(o["clientOrderId"] for o in expected)
        tracked = {cid: o for cid, o in state["orders"].items() if o["status"] != "UNKNOWN"}
        assert sorted(tracked) == sorted(o["clientOrderId"] for o in venue_open), (state, venue_open)
        for o in venue_open:
            mine = tracked[o["clientOrderId"]]
            assert (mine["side"], Decimal(mine["price"]), Decimal(mine["qty"]), Decimal(mine["cum_qty"])) == (
                o["side"],
                Decimal(o["price"]),
                Decimal(o["origQty"]),
                Decimal(o["executedQty"]),
            )
            assert mine["strategy"] == "mm"  # adopted under its strategy: it counts against the cap
        # an order in doubt is one the venue does not hold (the engine queries it at once)
        assert not {cid for cid, o in state["orders"].items() if o["status"] == "UNKNOWN"} & {
            o["clientOrderId"] for o in venue_open
        }
        # (a) balances and position equal the venue's
        assert {a: (Decimal(f), Decimal(lk)) for a, (f, lk) in state["balances"].items()} == balances
        venue_position = sum(balances["BTC"]) - START["BTC"]  # base bought minus sold, net of base fees
        assert Decimal(state["positions"][SYMBOL]) == venue_position

        # 3. quote again, then stop cleanly ---------------------------------------------------------
        market.resume()
        wait_until(
            lambda: any(c.startswith(run2) for c in tap.sent), 30, "a new order of the restart", second
        )
        wait_until(lambda: paper.call(tap.open_orders), 10, "a resting order", second)
        time.sleep(rng.uniform(0.2, 1.0))
        second.p.send_signal(signal.SIGTERM)
        code = second.finish(30)
    finally:
        second.kill()
    market.pause()
    text = second.text
    assert code == 0, text[-4000:]
    assert "may still be open" not in text

    # 4. the venue and the journal agree: nothing left open, nothing sent twice ---------------------
    assert paper.call(tap.open_orders) == []
    assert len(tap.sent) == len(set(tap.sent)), [c for c in tap.sent if tap.sent.count(c) > 1]
    assert all(c.startswith((run1, run2)) for c in tap.sent), tap.sent
    # the venue's record of every order it accepted (no public accessor for closed ones)
    history = paper.call(lambda: [o.client_id for o in paper.venue._orders[SYMBOL].values()])
    assert len(history) == len(set(history)) and set(history) <= set(tap.sent)
    assert tap.violations == [], tap.violations[:5]
    after = Journal.load(journal)
    assert after.open_orders == (), after.open_orders  # every order of both runs has its final word
    assert after.exit_reason == "SIGTERM" and after.clean_exit
    conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
    try:
        started = conn.execute(
            "SELECT MIN(time_ms) FROM balances WHERE run = 2 AND source = 'startup'"
        ).fetchone()[0]
        first_order = conn.execute("SELECT MIN(created_ms) FROM orders WHERE run = 2").fetchone()[0]
        ended = conn.execute("SELECT ended_ms FROM runs WHERE id = 1").fetchone()[0]
    finally:
        conn.close()
    assert started is not None and first_order is not None and started <= first_order
    assert ended is None  # the killed run never recorded an end
    assert re.search(rf"recovery \({policy}\): ", text), text[-3000:]
