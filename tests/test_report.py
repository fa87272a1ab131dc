"""``botcore report``: PnL, fills, drifts and latency from a synthetic journal; PNG and HTML."""

from __future__ import annotations

import base64
import io
import re
from decimal import Decimal
from pathlib import Path

import pytest

from botcore import builtin_services
from botcore.cli import build_parser
from botcore.journal import Journal, PnlSample
from botcore.model import Drift, Fill, Instrument, OrderOutcome, OrderRequest, OrderStatus, OrderType, Side
from botcore.plugins import collect_registry, get_plugin_manager
from botcore.report import build_report, format_text, render_png

D = Decimal
S = OrderStatus
SYM = "BTCUSDT"
T0 = 1_700_000_000_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def trade(
    cid: str, tid: int, side: Side, price: str, qty: str, fee: str, t: int, fee_asset: str = "USDT"
) -> Fill:
    return Fill(SYM, cid, tid, tid, side, D(price), D(qty), D(fee), fee_asset, True, T0 + t)


def synthetic(path: Path, samples: bool = True) -> None:
    """Buy 1 @100, sell 1 @110, buy 0.5 @105 (quote fees 0.1, 0.11, 0.05); mid ends at 106."""
    with Journal(path) as j:
        j.start_run(name="old", run_id="r0", id_prefix="bcr0-", started_ms=T0 - 10_000)
        j.end_run("duration reached", ended_ms=T0 - 5_000)
        j.start_run(
            name="paper",
            run_id="r1",
            id_prefix="bcr1-",
            instruments=[Instrument(SYM, "BTC", "USDT", D("0.01"), D("0.00001"))],
            started_ms=T0,
        )
        for i, (side, px, qty) in enumerate(
            [(Side.BUY, "100", "1"), (Side.SELL, "110", "1"), (Side.BUY, "105", "0.5")], 1
        ):
            cid = f"bcr1-{i}"
            j.record_order(
                OrderRequest(SYM, side, D(qty), D(px), OrderType.LIMIT_MAKER, None, cid, "mm"), time_ms=T0 + i
            )
            j.record_outcome(
                OrderOutcome("new", SYM, cid, S.NEW, order_id=i, sent_ns=0 + 1, done_ns=1 + 200_000 * i)
            )
        j.record_order(
            OrderRequest(SYM, Side.SELL, D("1"), D("120"), OrderType.LIMIT_MAKER, None, "bcr1-4", "mm")
        )
        j.record_outcome(OrderOutcome("new", SYM, "bcr1-4", S.REJECTED, error_code=-2010))
        j.record_fill(trade("bcr1-1", 1, Side.BUY, "100", "1", "0.1", 10_000))
        j.record_fill(trade("bcr1-2", 2, Side.SELL, "110", "1", "0.11", 20_000))
        j.record_fill(trade("bcr1-3", 3, Side.BUY, "105", "0.5", "0.05", 30_000))
        j.record_drifts(
            "reconcile_light",
            [Drift("balance.free", "USDT", "1", "1.00000001", 5, "fee rounding", True)],
            ["correct"],
            time_ms=T0 + 25_000,
        )
        if samples:
            for k, (pos, real, unr, fees, mid) in enumerate(
                [
                    ("0", "0", "0", "0", "99.5"),
                    ("1", "0", "2", "0.1", "102"),
                    ("0", "10", "0", "0.21", "108"),
                    ("0.5", "10", "0.5", "0.26", "106"),
                ]
            ):
                j.record_pnl(
                    [PnlSample(SYM, D(pos), D(real), D(unr), D(fees), D(mid))], time_ms=T0 + 10_000 * k + 5
                )
        j.record_latency(
            "tick_to_order", {"count": 3, "p50": 15.0, "p90": 30.0, "p99": 40.0, "max": 41.0, "mean": 20.0}
        )
        j.end_run("duration reached", ended_ms=T0 + 65_000)


def test_pnl_fills_drifts_and_latency(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    synthetic(path)
    rep = build_report(path)
    assert (rep.run, rep.runs, rep.name) == (2, [1, 2], "paper")
    assert rep.orders == 4 and rep.order_status == {"FILLED": 3, "REJECTED": 1}
    s = rep.symbols[SYM]
    assert (s.fills, s.bought, s.sold, s.volume) == (3, D("1.5"), D("1"), D("2.5"))
    assert s.notional == D("100") + D("110") + D("52.5")
    # average cost: sell 1 @110 against a cost of 100 -> 10; 0.5 bought @105 marked at mid 106 -> 0.5
    assert (s.position, s.realized, s.fees, s.mark) == (D("0.5"), D("10"), D("0.26"), D("106"))
    assert s.unrealized == D("0.5") and s.pnl == D("10.24") and s.engine_pnl == D("10.24")
    assert [p.position for p in s.series] == [0.0, 1.0, 0.0, 0.5]  # the engine's samples
    assert [side for _, _, side in s.fill_points] == ["BUY", "SELL", "BUY"]
    assert [d["cause"] for d in rep.drifts] == ["fee rounding"]
    assert rep.latency["new"]["count"] == 3
    assert rep.latency["new"]["p50"] == pytest.approx(400, rel=0.04)  # 200, 400, 600 us
    assert rep.engine_latency["tick_to_order"]["p99"] == 40.0
    text = format_text(rep)
    for needle in (
        "run 2 of 2 'paper'",
        "exit: duration reached",
        "fills 3 (maker 3), bought 1.5 sold 1, volume 2.5 / 262.5 USDT",
        "position 0.5  realized 10  unrealized 0.5 @ 106  fees 0.26  pnl 10.24 USDT",
        "balance.free USDT local=1 venue=1.00000001 cause=fee rounding action=correct corrected",
        "new round trip: n=3",
        "tick_to_order (engine): n=3 p50=15.0",
    ):
        assert needle in text, needle


def test_without_samples_the_series_steps_at_fills_and_marks_at_the_last_price(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    synthetic(path, samples=False)
    s = build_report(path).symbols[SYM]
    assert s.mark == D("105") and s.unrealized == D(0) and s.engine_pnl is None
    assert [round(p.pnl, 6) for p in s.series] == [-0.1, 9.79, 9.74]


def test_an_earlier_run_and_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    synthetic(path)
    rep = build_report(path, run=1)
    assert rep.name == "old" and rep.symbols == {} and "fills: none" in format_text(rep)
    buf = io.BytesIO()
    render_png(rep, buf)  # still a valid picture (with a note)
    assert buf.getvalue().startswith(PNG_MAGIC)
    with pytest.raises(Exception, match="no run 9"):
        build_report(path, run=9)


def decode_png(data: bytes) -> tuple[int, int, float]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.image as mpimg

    img = mpimg.imread(io.BytesIO(data), format="png")
    return img.shape[0], img.shape[1], float(img[..., :3].std())


def test_png_is_a_real_chart(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    synthetic(path)
    buf = io.BytesIO()
    render_png(build_report(path), buf)
    data = buf.getvalue()
    assert data.startswith(PNG_MAGIC)
    height, width, spread = decode_png(data)
    assert height > 100 and width > 100
    assert spread > 0.05  # lines, text, markers on white: far from a blank image


def test_cli_command_writes_png_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "j.sqlite"
    synthetic(path)
    registry = collect_registry(get_plugin_manager(load_entrypoints=False, extra=[builtin_services]))
    assert "report" in registry.commands
    parser = build_parser(registry)
    png, page = tmp_path / "out.png", tmp_path / "out.html"
    args = parser.parse_args(["report", str(path), "--png", str(png), "--html", str(page), "--run", "2"])
    assert args._run(args) == 0
    out = capsys.readouterr().out
    assert "pnl 10.24 USDT" in out and f"chart: {png}" in out
    assert png.read_bytes().startswith(PNG_MAGIC)
    html = page.read_text()
    m = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert m and base64.b64decode(m.group(1)) == png.read_bytes()
    assert "pnl 10.24 USDT" in html and "<script" not in html


def test_cli_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    registry = collect_registry(get_plugin_manager(load_entrypoints=False, extra=[builtin_services]))
    parser = build_parser(registry)
    args = parser.parse_args(["report", str(tmp_path / "missing.sqlite")])
    assert args._run(args) == 2
    assert "no such journal" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"x" * 4096)
    args = parser.parse_args(["report", str(junk)])
    assert args._run(args) == 2
    assert "not a botcore journal" in capsys.readouterr().err
    empty = tmp_path / "empty.sqlite"
    Journal(empty).close()
    args = parser.parse_args(["report", str(empty)])
    assert args._run(args) == 2 and "no runs" in capsys.readouterr().err


def test_html_escapes_run_names(tmp_path: Path) -> None:
    from botcore.report import render_html

    path = tmp_path / "j.sqlite"
    with Journal(path) as j:
        j.start_run(name="<b>x</b>", run_id="r1", id_prefix="bcr1-")
    page = tmp_path / "p.html"
    render_html(build_report(path), page)
    assert "<b>x</b>" not in page.read_text() and "&lt;b&gt;x&lt;/b&gt;" in page.read_text()
