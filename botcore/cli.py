"""The ``botcore`` command line.

``botcore [--log-level L] [--plugins-dir DIR]... COMMAND``

``run CONFIG``       trade (paper by default); ``--i-mean-production`` is required for real money.
``check CONFIG``     validate the config against the loaded plugins, then the exchange filters.
``plugins``          list loaded plugins, their versions and hooks.
Plugins add more commands through ``botcore_register_commands``.

Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error (one clear message on
stderr, no traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import pluggy

import botcore
from botcore.config import BotConfig, ConfigError, load_config, parse_duration, validate_against_registry
from botcore.plugins import (
    PluginError,
    Registry,
    collect_registry,
    get_plugin_manager,
    list_plugins,
)

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_INTERRUPTED", "EXIT_OK", "build_parser", "main"]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130

BUILTIN_COMMANDS = ("run", "check", "plugins")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

log = logging.getLogger(__name__)


class UsageError(Exception):
    """A command-line mistake reported with exit code 2."""


def _duration_arg(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"botcore {botcore.__version__}")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=None,
        help="log level (default: the config's run.log_level, WARNING for other commands)",
    )
    parser.add_argument(
        "--plugins-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="also load every *.py file in DIR as a plugin (repeatable)",
    )


def build_parser(registry: Registry | None = None) -> argparse.ArgumentParser:
    """The full parser: global options, built-in commands, and commands registered by plugins."""
    parser = argparse.ArgumentParser(
        prog="botcore",
        description="Plugin-based market-making bot for Binance spot, with a local paper exchange.",
    )
    _global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run the bot with CONFIG", description="Run the bot with CONFIG.")
    p.add_argument("config", metavar="CONFIG", help="YAML config file")
    p.add_argument(
        "--i-mean-production",
        action="store_true",
        help="required (with exchange.allow_production: true) to trade real money",
    )
    p.add_argument(
        "--duration",
        type=_duration_arg,
        default=None,
        help="stop after D (e.g. 90s, 5m); overrides run.duration",
    )
    p.set_defaults(_run=_cmd_run)

    p = sub.add_parser(
        "check",
        help="validate CONFIG and the first quotes",
        description="Validate CONFIG against the loaded plugins, then check first quotes against "
        "the exchange filters.",
    )
    p.add_argument("config", metavar="CONFIG", help="YAML config file")
    p.set_defaults(_run=_cmd_check)

    p = sub.add_parser("plugins", help="list loaded plugins", description="List loaded plugins as JSON.")
    p.add_argument("--all", action="store_true", help="include botcore's built-in plugins")
    p.add_argument("--hook", metavar="NAME", help="only plugins implementing hook NAME")
    p.set_defaults(_run=_cmd_plugins)

    for name, setup in sorted((registry.commands if registry else {}).items()):
        if name in BUILTIN_COMMANDS:
            owner = registry.providers["commands"].get(name, "?") if registry else "?"
            raise PluginError(f"plugin {owner!r} registers command {name!r}, which is a built-in command")
        doc = (getattr(setup, "__doc__", None) or "").strip().splitlines()
        p = sub.add_parser(
            name, help=doc[0] if doc else f"(from plugin {registry.providers['commands'][name]})"
        )
        try:
            run = setup(p)
        except Exception as exc:
            owner = registry.providers["commands"][name]
            raise PluginError(f"plugin {owner!r} failed to set up command {name!r}: {exc}") from exc
        if not callable(run):
            owner = registry.providers["commands"][name]
            raise PluginError(f"plugin {owner!r}: setup of command {name!r} must return run(args) -> int")
        p.set_defaults(_run=run)
    return parser


# ---------------------------------------------------------------------------------------------
# Built-in commands
# ---------------------------------------------------------------------------------------------


def _app() -> ModuleType | None:
    """``botcore.app``, imported lazily so the CLI works before (or without) the engine."""
    try:
        return importlib.import_module("botcore.app")
    except ModuleNotFoundError as exc:
        if exc.name == "botcore.app":
            return None
        raise


def _load(args: argparse.Namespace) -> BotConfig:
    config = load_config(args.config)
    validate_against_registry(config, args.registry)
    return config


def _cmd_run(args: argparse.Namespace) -> int:
    config = _load(args)
    if config.exchange.mode == "production" and not args.i_mean_production:
        raise UsageError(
            f"{args.config}: exchange.mode is 'production' (real money): add --i-mean-production to run it"
        )
    app = _app()
    if app is None:
        print("botcore: botcore.app is not available in this installation", file=sys.stderr)
        return EXIT_FAILURE
    result: int = app.run(config, args.plugin_manager, args)
    return result


def _summary(config: BotConfig, args: argparse.Namespace) -> list[str]:
    ex = config.exchange
    lines = [
        f"config OK: {args.config}",
        f"  exchange: {ex.name} ({ex.mode}) symbols: {', '.join(ex.symbols)}",
    ]
    for s in config.strategies:
        lines.append(f"  strategy: {s.name} ({s.type}) on {', '.join(s.symbols or ex.symbols)}")
    for c in config.risk.checks:
        lines.append(f"  risk check: {c.name} ({c.type}){' shadow' if c.shadow else ''}")
    for j in config.schedules:
        trigger = f"every {j.every:g}s" if j.every is not None else f"cron '{j.cron}'"
        lines.append(f"  schedule: {j.name} ({j.job}) {trigger}")
    if config.run.journal is not None:
        lines.append(f"  journal: {config.run.journal}")
    if config.metrics.port is not None:
        lines.append(f"  metrics: {config.metrics.host}:{config.metrics.port}")
    names = [p["name"] for p in list_plugins(args.plugin_manager)]
    lines.append(f"  plugins: {', '.join(names) or '(built-ins only)'}")
    if ex.mode == "production":
        lines.append("  note: production mode; `botcore run` also needs --i-mean-production")
    return lines


def _cmd_check(args: argparse.Namespace) -> int:
    config = _load(args)
    print("\n".join(_summary(config, args)), flush=True)
    app = _app()
    check: Callable[..., int] | None = getattr(app, "check", None) if app is not None else None
    if check is None:
        return EXIT_OK
    return check(config, args.plugin_manager, args)


def _cmd_plugins(args: argparse.Namespace) -> int:
    plugins = list_plugins(args.plugin_manager, all=args.all)
    if args.hook:
        hook = args.hook if args.hook.startswith("botcore_") else f"botcore_{args.hook}"
        known = [n for n in vars(args.plugin_manager.hook) if n.startswith("botcore_")]
        if hook not in known:
            close = difflib.get_close_matches(hook, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"unknown hook {args.hook!r}{hint}")
        plugins = [p for p in plugins if hook in p["hooks"]]
    print(json.dumps(plugins, indent=2))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------


def _setup_logging(level: str | None) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level or "WARNING",
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    elif level:
        logging.getLogger().setLevel(level)


def _build(argv: Sequence[str]) -> tuple[argparse.Namespace, pluggy.PluginManager, Registry]:
    # Phase 1: the global options decide which plugins load, and plugins may add commands.
    # --version is answered here, before any plugin is imported.
    pre = argparse.ArgumentParser(prog="botcore", add_help=False, allow_abbrev=False)
    _global_options(pre)
    early, _ = pre.parse_known_args(argv)
    _setup_logging(early.log_level)
    pm = get_plugin_manager(plugins_dir=early.plugins_dir or None)
    registry = collect_registry(pm)
    # Phase 2: the real parser.
    args = build_parser(registry).parse_args(argv)
    args.plugin_manager = pm
    args.registry = registry
    return args, pm, registry


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``python -m botcore`` exits with it).

    Commands get the parsed ``args`` with two extras: ``args.plugin_manager`` (the pluggy
    manager) and ``args.registry`` (``botcore.plugins.Registry``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args, _pm, _registry = _build(argv)
        run: Callable[[argparse.Namespace], Any] = args._run
        code = run(args)
        return EXIT_OK if code is None else int(code)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_CONFIG)
    except ConfigError as exc:
        print(f"botcore: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except PluginError as exc:
        print(f"botcore: plugin error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except UsageError as exc:
        print(f"botcore: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print("botcore: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:
        print("botcore: failed:", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        return EXIT_FAILURE
