"""``botcore paper serve``: run the paper exchange in the foreground until SIGINT/SIGTERM.

On start it prints one ``name: value`` line each for ``rest_url``, ``stream_url``, ``ws_api_url``,
``api_key`` and ``api_secret`` of the default account. Printing the secret is intended here: it is a
throwaway key of a local, loopback-only exchange, and other tools read it from this output.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any


def _balance(text: str) -> tuple[str, Decimal]:
    asset, sep, amount = text.partition("=")
    try:
        if not sep or not asset:
            raise InvalidOperation
        return asset.upper(), Decimal(amount)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected ASSET=AMOUNT, got {text!r}") from None


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """Run the local Binance-compatible paper exchange."""
    sub = parser.add_subparsers(dest="paper_command", metavar="SUBCOMMAND")
    sub.required = True
    serve = sub.add_parser(
        "serve",
        help="serve the paper exchange until stopped",
        description="Serve REST /api/v3, /ws, /stream and /ws-api/v3 on one port. Without --data the "
        "shipped BTCUSDT recording is replayed.",
    )
    serve.add_argument("--data", nargs="+", metavar="FILE", help="recording files to replay")
    serve.add_argument(
        "--speed", type=float, default=1.0, help="replay speed (1 real time, 0 as fast as possible)"
    )
    serve.add_argument("--port", type=int, default=0, help="port (0 = a free one)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default loopback)")
    serve.add_argument(
        "--faults", metavar="JSON-or-FILE", help="fault specs (see botcore_exchange_paper.faults)"
    )
    serve.add_argument(
        "--options", metavar="JSON", help="server options (see botcore_exchange_paper.options)"
    )
    serve.add_argument(
        "--synthetic", action="store_true", help="seeded random-walk market instead of a replay"
    )
    serve.add_argument("--seed", type=int, default=1, help="seed of the synthetic market")
    serve.add_argument("--symbols", nargs="+", metavar="SYMBOL", help="symbols of the synthetic market")
    serve.add_argument("--loop", action="store_true", help="restart the replay at its end")
    serve.add_argument(
        "--balance",
        action="append",
        type=_balance,
        metavar="ASSET=AMOUNT",
        help="default account balance (repeat)",
    )
    return run


def build_block(args: argparse.Namespace) -> dict[str, Any]:
    """The ``paper:`` block equivalent of the command-line flags."""
    block: dict[str, Any] = {
        "speed": args.speed,
        "synthetic": args.synthetic,
        "seed": args.seed,
        "loop": args.loop,
    }
    if args.data:
        block["data"] = list(args.data)
    if args.symbols:
        block["symbols"] = [s.upper() for s in args.symbols]
    if args.balance:
        block["balances"] = dict(args.balance)
    if args.options:
        block["options"] = json.loads(args.options)
    return block


def run(args: argparse.Namespace) -> int:
    from botcore_exchange_paper.embedded import start_embedded
    from botcore_exchange_paper.faults import parse_specs
    from botcore_exchange_paper.plugin import paper_config_from_block

    try:
        config, _ = paper_config_from_block(build_block(args))
        faults = parse_specs(args.faults) if args.faults else None
    except (ValueError, OSError) as exc:
        print(f"botcore paper serve: {exc}", file=sys.stderr)
        return 2
    try:
        paper = start_embedded(config, host=args.host, port=args.port, faults=faults)
    except OSError as exc:  # e.g. the port is taken
        print(f"botcore paper serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name in ("rest_url", "stream_url", "ws_api_url", "api_key", "api_secret"):
            print(f"{name}: {getattr(paper, name)}")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        paper.close()
    return 0
