"""Read recorded Binance websocket captures (the hftbacktest format shipped in botcore/data).

Each line is ``<local_receive_ns> <raw JSON exactly as received>``; the JSON is a combined-stream
envelope (``{"stream":"btcusdt@depth@100ms","data":{...}}``) or a bare REST depth snapshot
(``{"lastUpdateId":...}``) that the recorder fetched right after subscribing. Shared by the paper
exchange (market source), the engine's replay adapter, tests and benchmarks.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path

SHIPPED_BTCUSDT: tuple[str, ...] = ("btcusdt_20240808.gz", "btcusdt_20240809.gz")


def shipped_recording(names: Iterable[str] = SHIPPED_BTCUSDT) -> list[Path]:
    """Paths of the recordings shipped inside the package (real Binance data, MIT, see LICENSE)."""
    base = resources.files("botcore") / "data" / "hftbacktest"
    return [Path(str(base / name)) for name in names]


def iter_recording(paths: Iterable[str | Path]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(local_receive_ns, raw_json_bytes)`` for every record of the files, in order.

    Files are read as one continuous capture (the 0809 file continues 0808). Blank lines are
    skipped; a line without the ``<ns> <json>`` shape raises ValueError naming file and line.
    """
    for path in paths:
        p = Path(path)
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip(b"\r\n")
                if not line:
                    continue
                sep = line.find(b" ")
                if sep <= 0 or not line[:sep].isdigit():
                    raise ValueError(f"{p}:{lineno}: expected '<local_ns> <json>'")
                yield int(line[:sep]), line[sep + 1 :]


def is_snapshot(raw: bytes) -> bool:
    """A bare REST depth snapshot line (as opposed to a stream envelope)."""
    return raw.startswith(b'{"lastUpdateId"')


def stream_name(raw: bytes) -> str:
    """The ``stream`` of a combined envelope (``btcusdt@depth@100ms``), '' if not an envelope."""
    if not raw.startswith(b'{"stream":"'):
        return ""
    end = raw.find(b'"', 11)
    return raw[11:end].decode() if end > 0 else ""
