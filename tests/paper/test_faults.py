"""Every fault kind, switched at run time (Python API and POST /paper/faults) or from config."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket
from botcore_exchange_paper.embedded import EmbeddedPaper
from botcore_exchange_paper.faults import UNKNOWN_STATUS_MSG, parse_specs
from paper_support import (
    KEY,
    SYMBOL,
    Rest,
    Ws,
    balances,
    now_ms,
    open_order_ids,
    passive_prices,
    start_paper,
    wait_for,
    ws_signed,
)

UNKNOWN = {"code": -1007, "msg": UNKNOWN_STATUS_MSG}


@pytest.fixture(autouse=True)
def _clean(paper: EmbeddedPaper) -> Iterator[None]:
    yield
    paper.faults.clear()
    Rest(paper).signed("DELETE", "openOrders", {"symbol": SYMBOL})


def closed(ws: Ws, timeout: float = 3.0) -> bool:
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ws.recv(end - time.monotonic())
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError):
        return True
    except (websocket.WebSocketTimeoutException, TimeoutError):
        return False
    return False


def alive(ws: Ws) -> bool:
    ws.send({"method": "LIST_SUBSCRIPTIONS", "id": 4242})
    try:
        ws.until(lambda m: m.get("id") == 4242, timeout=2)
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError, TimeoutError):
        return False
    return True


def api_alive(ws: Ws) -> bool:
    ws.send({"id": "alive", "method": "ping"})
    try:
        ws.until(lambda m: m.get("id") == "alive", timeout=2)
    except (websocket.WebSocketConnectionClosedException, ConnectionError, OSError, TimeoutError):
        return False
    return True


def subscribe(paper: EmbeddedPaper) -> Ws:
    ws = Ws(paper.ws_api_url)
    ws.send(ws_signed("userDataStream.subscribe.signature", {}, req_id="sub"))
    assert ws.until(lambda m: m.get("id") == "sub")[0]["status"] == 200
    return ws


def limit_params(rest: Rest, cid: str) -> dict[str, Any]:
    bid, _ = passive_prices(rest)
    return {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.001", "price": bid,
            "newClientOrderId": cid}  # fmt: skip


def exists(rest: Rest, cid: str) -> str:
    r = rest.signed("GET", "order", {"symbol": SYMBOL, "origClientOrderId": cid})
    return r.json().get("status", f"missing {r.json()}")


# -- connections ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "market_dies", "user_dies"),
                         [("market", True, False), ("user", False, True), ("all", True, True)])  # fmt: skip
def test_drop(paper: EmbeddedPaper, target: str, market_dies: bool, user_dies: bool) -> None:
    market = Ws(paper.stream_url + "ws/btcusdt@bookTicker")
    user = subscribe(paper)
    assert alive(market) and api_alive(user)
    dropped = paper.faults.drop(target)
    assert dropped == market_dies + user_dies
    assert closed(market, 1.0) is market_dies
    assert closed(user, 1.0) is user_dies
    for ws in (market, user):
        ws.close()


def test_depth_gap_skips_exactly_one_diff(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + "ws/btcusdt@depth@100ms")
    try:
        assert alive(ws)
        paper.step(200)
        paper.faults.depth_gap(SYMBOL)
        assert paper.faults.state()["depth_gaps"] == {SYMBOL: 1}
        paper.step(400)
        diffs = [m for m in ws.drain(0.5) if m.get("e") == "depthUpdate"]
        gaps = [(a["u"], b["U"]) for a, b in zip(diffs, diffs[1:], strict=False) if b["U"] != a["u"] + 1]
        assert len(gaps) == 1 and gaps[0][1] > gaps[0][0] + 1
        assert paper.faults.state()["depth_gaps"] == {}
    finally:
        ws.close()


def test_stall_keeps_the_socket_open_but_silent(paper: EmbeddedPaper) -> None:
    ws = Ws(paper.stream_url + "ws/btcusdt@bookTicker")
    try:
        assert alive(ws)
        paper.faults.stall("market", seconds=0.6)
        paper.step(300)
        assert [m for m in ws.drain(0.3) if "u" in m] == []
        assert not closed(ws, 0.1)
        time.sleep(0.4)
        paper.step(300)
        msg, _ = ws.until(lambda m: "u" in m, timeout=3)
        assert msg["s"] == SYMBOL
    finally:
        ws.close()


# -- REST faults ---------------------------------------------------------------------------------


def test_rate_limit_storm_then_ban(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    paper.faults.rate_limit_storm(seconds=30)
    r = rest.public("ping")
    assert r.status_code == 429 and r.json()["code"] == -1003 and 25 <= int(r.headers["Retry-After"]) <= 30
    statuses = [rest.public("ping").status_code for _ in range(6)]
    assert statuses[:3] == [429, 429, 429] and statuses[-1] == 418  # ban_after = 3 (default)
    banned = rest.public("ping").json()
    assert banned["code"] == -1003 and banned["msg"].startswith(
        "Way too much request weight used; IP banned until "
    )
    paper.faults.clear()
    assert rest.public("ping").status_code == 200


def test_clock_skew_causes_1021_until_the_client_resyncs(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    paper.faults.clock_skew(+8000)
    server_time = rest.public("time").json()["serverTime"]
    assert 7000 < server_time - now_ms() < 9000
    r = rest.signed("GET", "account")
    assert r.json() == {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."}
    offset = server_time - now_ms()
    assert rest.signed("GET", "account", timestamp=now_ms() + offset).status_code == 200
    paper.faults.clock_skew(-3000)
    r = rest.signed("GET", "account")
    assert r.json() == {
        "code": -1021,
        "msg": "Timestamp for this request was 1000ms ahead of the server's time.",
    }


def test_5xx_after_the_order_was_placed(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    paper.faults.order_5xx(count=1)
    r = rest.signed("POST", "order", limit_params(rest, "unknown-1"))
    assert (r.status_code, r.json()) == (503, UNKNOWN)
    assert r.headers["Content-Type"].startswith("application/json")
    assert exists(rest, "unknown-1") == "NEW"  # the venue really has it
    assert rest.signed("POST", "order", limit_params(rest, "unknown-2")).status_code == 200  # one-shot


def test_ack_delay(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    paper.faults.ack_delay(ms=400)
    start = time.monotonic()
    r = rest.signed("POST", "order", limit_params(rest, "slow-1"))
    assert r.status_code == 200 and time.monotonic() - start >= 0.4
    start = time.monotonic()
    assert rest.signed("POST", "order", limit_params(rest, "fast-1")).status_code == 200
    assert time.monotonic() - start < 0.4


def test_ack_lost_rest(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    paper.faults.ack_lost(count=1)
    with pytest.raises(requests.ConnectionError):
        rest.signed("POST", "order", limit_params(rest, "lost-1"))
    assert exists(Rest(paper), "lost-1") == "NEW"


def test_order_faults_filter_by_action_and_account(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    paper.faults.order_5xx(count=1, actions=["cancel"], api_key=KEY)
    placed = rest.signed("POST", "order", limit_params(rest, "cxl-5xx"))
    assert placed.status_code == 200
    r = rest.signed("DELETE", "order", {"symbol": SYMBOL, "origClientOrderId": "cxl-5xx"})
    assert (r.status_code, r.json()) == (503, UNKNOWN)
    assert exists(rest, "cxl-5xx") == "CANCELED"


# -- WebSocket API order faults ------------------------------------------------------------------


def test_ws_api_order_faults(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    ws = Ws(paper.ws_api_url)
    try:
        paper.faults.order_5xx(count=1)
        ws.send(ws_signed("order.place", limit_params(rest, "ws-5xx"), req_id="a"))
        r = ws.until(lambda m: m.get("id") == "a")[0]
        assert (r["status"], r["error"]) == (503, UNKNOWN)
        assert exists(rest, "ws-5xx") == "NEW"

        paper.faults.ack_delay(ms=300)
        start = time.monotonic()
        ws.send(ws_signed("order.place", limit_params(rest, "ws-slow"), req_id="b"))
        ws.send({"id": "c", "method": "ping"})
        order_of = [m["id"] for m in (ws.recv(), ws.recv())]
        assert order_of == ["c", "b"]  # the delayed ack arrives after a later answer
        assert time.monotonic() - start >= 0.3

        paper.faults.ack_lost(count=1)
        ws.send(ws_signed("order.place", limit_params(rest, "ws-lost"), req_id="d"))
        assert closed(ws, 2.0)
        assert exists(rest, "ws-lost") == "NEW"
    finally:
        ws.close()


# -- user data faults ----------------------------------------------------------------------------


def test_user_stream_terminated(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    ws = subscribe(paper)
    try:
        assert paper.faults.user_stream_terminated() == 1
        msg = ws.recv()
        assert msg["subscriptionId"] == 0 and msg["event"]["e"] == "eventStreamTerminated"
        rest.signed("POST", "order", limit_params(rest, "after-term"))
        assert [m for m in ws.drain(0.3) if "event" in m] == []
        ws.send({"id": "s", "method": "session.subscriptions"})
        assert ws.until(lambda m: m.get("id") == "s")[0]["result"] == []
        ws.send(ws_signed("userDataStream.subscribe.signature", {}, req_id="re"))
        assert ws.until(lambda m: m.get("id") == "re")[0]["result"] == {"subscriptionId": 1}
    finally:
        ws.close()


def test_duplicate_and_lost_user_events(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    ws = subscribe(paper)
    try:
        paper.faults.duplicate_user_events(count=1)
        rest.signed("POST", "order", limit_params(rest, "dup-1"))
        events = [m["event"] for m in ws.drain(0.4) if "event" in m]
        reports = [e for e in events if e["e"] == "executionReport"]
        assert len(reports) == 2 and reports[0] == reports[1] and reports[0]["c"] == "dup-1"
        assert len([e for e in events if e["e"] == "outboundAccountPosition"]) == 1

        paper.faults.lost_user_events(count=1)
        rest.signed("POST", "order", limit_params(rest, "lost-ev"))
        events = [m["event"] for m in ws.drain(0.4) if "event" in m]
        assert [e["e"] for e in events] == ["outboundAccountPosition"]  # the executionReport was lost
        assert exists(rest, "lost-ev") == "NEW"
    finally:
        ws.close()


def test_stalled_user_stream_loses_events(paper: EmbeddedPaper) -> None:
    rest = Rest(paper)
    ws = subscribe(paper)
    try:
        paper.faults.stall("user", seconds=0.5)
        rest.signed("POST", "order", limit_params(rest, "stall-u"))
        assert [m for m in ws.drain(0.3) if "event" in m] == []
        assert api_alive(ws)
        time.sleep(0.3)
        rest.signed("DELETE", "order", {"symbol": SYMBOL, "origClientOrderId": "stall-u"})
        msg, _ = ws.until(lambda m: m.get("event", {}).get("x") == "CANCELED")
        assert msg["event"]["C"] == "stall-u"
    finally:
        ws.close()


# -- control surfaces ----------------------------------------------------------------------------


def test_faults_over_http(paper: EmbeddedPaper) -> None:
    url = paper.base_url + "/paper/faults"
    r = requests.post(url, json={"kind": "clock_skew", "ms": 1500}, timeout=5)
    assert r.status_code == 200 and r.json()["active"]["clock_skew_ms"] == 1500
    r = requests.post(url, json=[{"kind": "order_5xx", "count": 2}, {"kind": "depth_gap", "symbol": "btcusdt"}],
                      timeout=5)  # fmt: skip
    state = r.json()["active"]
    assert state["order_faults"][0]["remaining"] == 2 and state["depth_gaps"] == {SYMBOL: 1}
    assert requests.get(url, timeout=5).json()["active"] == state
    bad = requests.post(url, json={"kind": "meteor_strike"}, timeout=5)
    assert bad.status_code == 400 and "meteor_strike" in bad.json()["error"]
    bad_key = requests.post(url, json={"kind": "stall", "secs": 3}, timeout=5)
    assert bad_key.status_code == 400 and "secs" in bad_key.json()["error"]
    cleared = requests.delete(url, timeout=5).json()["active"]
    assert cleared["clock_skew_ms"] == 0 and cleared["order_faults"] == [] and cleared["depth_gaps"] == {}


def test_fault_specs_parse_every_config_shape(tmp_path: Any) -> None:
    as_map = parse_specs({"clock_skew": 2500, "order_5xx": {"count": 3}, "drop": {"target": "user", "every_s": 30},
                          "duplicate_user_events": False})  # fmt: skip
    assert [(s["kind"], s.get("ms"), s.get("count"), s.get("every_s")) for s in as_map] == [
        ("clock_skew", 2500, None, None), ("order_5xx", None, 3, None), ("drop", None, None, 30.0)]  # fmt: skip
    f = tmp_path / "faults.json"
    f.write_text('[{"kind": "ack_lost"}]')
    assert parse_specs(str(f))[0]["kind"] == "ack_lost"
    assert parse_specs('{"kind": "stall", "seconds": 2}')[0]["seconds"] == 2.0
    with pytest.raises(ValueError, match="target"):
        parse_specs([{"kind": "drop", "target": "everything"}])


def test_scheduled_faults_from_config() -> None:
    paper = start_paper(
        faults={"drop": {"target": "market", "at_s": 0.4}, "clock_skew": {"ms": 1234}}, warmup=10
    )
    try:
        assert paper.faults.state()["clock_skew_ms"] == 1234
        ws = Ws(paper.stream_url + "ws/btcusdt@bookTicker")
        start = time.monotonic()
        assert closed(ws, 3.0)
        assert time.monotonic() - start < 1.0
        ws.close()
        history = requests.get(paper.base_url + "/paper/faults", timeout=5).json()["history"]
        assert [h["kind"] for h in history] == ["clock_skew", "drop"]
    finally:
        paper.close()


def test_faults_leave_accounts_consistent(paper: EmbeddedPaper) -> None:
    """After a run of faulty order requests the venue's books still balance for the client."""
    rest = Rest(paper)
    start = balances(paper)
    paper.faults.submit([{"kind": "order_5xx", "count": 1}, {"kind": "ack_lost", "count": 1}])
    rest.signed("POST", "order", limit_params(rest, "cons-1"))
    with pytest.raises(requests.ConnectionError):
        rest.signed("POST", "order", limit_params(rest, "cons-2"))
    rest = Rest(paper)
    assert len(open_order_ids(paper)) == 2
    rest.signed("DELETE", "openOrders", {"symbol": SYMBOL})
    wait_for(lambda: open_order_ids(paper) == [])
    assert balances(paper) == start
