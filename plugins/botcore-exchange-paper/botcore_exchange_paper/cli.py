"""``botcore paper serve``: run the paper exchange in the foreground until SIGINT/SIGTERM.

On start it prints one ``name: value`` line each for ``rest_url``, ``stream_url``, ``ws_api_url``,
``api_key`` and ``api_secret`` of the default account. Printing the secret is intended here: it is a
throwaway key of a local, loopback-only exchange, and other tools read it from this output.

``botcore run`` starts the exchange of ``exchange.mode: paper`` this way, as a child process
(``python -m botcore_exchange_paper serve --block JSON --exit-with-stdin``, see ``child.py``): the
whole ``paper:`` block travels as JSON, and the child lives exactly as long as its stdin pipe, so
it dies with its parent, and a Ctrl-C or SIGTERM aimed at the whole process group leaves it to
the bot to cancel its orders first and then close the pipe.
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
    serve.add_argument(
        "--block",
        metavar="JSON",
        help="the whole YAML `paper:` block as JSON (data, speed, balances, fill, faults, options, ...); "
        "replaces --data, --speed, --synthetic, --seed, --symbols, --loop, --balance and --options",
    )
    serve.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="run until stdin is closed (the parent's pipe), ignoring SIGINT and SIGTERM: the mode "
        "`botcore run` uses for its child exchange",
    )
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
    """The ``paper:`` block equivalent of the command-line flags (``--block`` replaces them)."""
    if getattr(args, "block", None):
        given = json.loads(args.block)
        if not isinstance(given, dict):
            raise ValueError("--block: expected a JSON object (the paper: block)")
        return given
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
        block = build_block(args)
        block.pop("port", None)  # --port decides
        (block.get("options") or {}).pop("in_process", None)  # a botcore run option, not the server's
        config, _ = paper_config_from_block(block)
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

    handler: Any = signal.SIG_IGN if args.exit_with_stdin else on_signal
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    if args.exit_with_stdin:
        threading.Thread(target=_wait_for_eof, args=(stop,), name="paper-stdin", daemon=True).start()
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


def _wait_for_eof(stop: threading.Event) -> None:
    """Set ``stop`` once stdin reaches end of file: the parent closed the pipe, or died."""
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()
