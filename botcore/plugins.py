"""The plugin manager: how botcore finds, checks and calls its plugins.

Everything is a plugin, built-ins included: botcore's own ``pyproject.toml`` and each first-party
distribution under ``plugins/`` declare ``[project.entry-points.botcore]`` entries, exactly like a
third-party plugin, so one ``botcore`` entry-point group loads them all (pluggy's eggsample shape).

Environment variables (read each time a manager is built, so tests can set them):

``BOTCORE_LOAD_PLUGINS``
    Comma list of entry-point names or distribution names to load; nothing else from the
    ``botcore`` group is imported. An empty string loads no entry points at all. Unset: load all.
    A listed name that is not installed is an error (it is almost always a typo).
``BOTCORE_BLOCK_PLUGINS``
    Comma list of plugin names (entry-point name, distribution name or loose-file stem) never to
    load. Applied after the allow list.
``BOTCORE_TRACE_PLUGINS=1``
    Log every hook call, its arguments and its result (logger ``botcore.plugins.trace``, INFO).

Overriding: a registration made from an implementation marked ``@hookimpl(trylast=True)`` is a
*default*. Another plugin may register the same name from a normal implementation and replace it
(logged at INFO). Any other duplicate name is an error naming both plugins, because silently
picking one of two strategies called ``mm`` is how a bot trades the wrong thing.

The core never calls ``pm.hook.*`` directly: it goes through ``Hooks`` (one typed method per hook,
tox style), so a renamed or re-typed hook breaks here, in one place, not at a call site.
"""

from __future__ import annotations

import difflib
import importlib.metadata as metadata
import importlib.util
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from botcore import hookimpl, hookspecs

if TYPE_CHECKING:
    from botcore.contracts import VenueEndpoints
    from botcore.model import ExecutionReport, Fill, OrderOutcome, OrderRequest, Quote

__all__ = [
    "ENTRY_POINT_GROUP",
    "BotcorePluginManager",
    "Hooks",
    "PluginError",
    "PluginSource",
    "Registry",
    "collect_registry",
    "get_plugin_manager",
    "list_plugins",
]

log = logging.getLogger(__name__)
trace_log = logging.getLogger("botcore.plugins.trace")

ENTRY_POINT_GROUP = "botcore"
ENV_LOAD = "BOTCORE_LOAD_PLUGINS"
ENV_BLOCK = "BOTCORE_BLOCK_PLUGINS"
ENV_TRACE = "BOTCORE_TRACE_PLUGINS"
HANDOFF_PLUGIN = "botcore.submit-handoff"
INTERNAL_DISTRIBUTION = "botcore"

T = TypeVar("T")


class PluginError(Exception):
    """A plugin could not be loaded, failed validation, or clashes with another plugin."""


@dataclass(frozen=True)
class PluginSource:
    """Where a registered plugin came from (shown by ``botcore plugins`` and in error messages)."""

    kind: str  # "entrypoint" | "file" | "extra" | "internal"
    distribution: str | None = None
    version: str | None = None
    location: str | None = None

    def describe(self) -> str:
        if self.distribution:
            return f"distribution {self.distribution} {self.version or ''}".rstrip()
        if self.location:
            return self.location
        return self.kind


class BotcorePluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.sources: dict[str, PluginSource] = {}

    def describe(self, name: str) -> str:
        """``plugin 'x' (distribution d 1.0)``: for error messages."""
        src = self.sources.get(name)
        return f"plugin {name!r} ({src.describe()})" if src else f"plugin {name!r}"


def _describe(pm: pluggy.PluginManager, name: str) -> str:
    if isinstance(pm, BotcorePluginManager):
        return pm.describe(name)
    return f"plugin {name!r}"


def _normalize(name: str) -> str:
    """PEP 503 normalization so ``botcore_sample-plugin`` and ``botcore-sample-plugin`` match."""
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def _env_names(var: str) -> set[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    return {_normalize(n) for n in value.split(",") if n.strip()}


def _spec_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith("botcore_"))


# ---------------------------------------------------------------------------------------------
# Building the manager
# ---------------------------------------------------------------------------------------------


def get_plugin_manager(
    *,
    load_entrypoints: bool = True,
    plugins_dir: str | Path | Sequence[str | Path] | None = None,
    extra: Sequence[object] = (),
) -> pluggy.PluginManager:
    """Build a checked plugin manager.

    Order: hook specs, the ``botcore`` entry-point group (filtered by the env vars), loose ``*.py``
    files from ``plugins_dir`` (one or several directories; module name = file stem), ``extra``
    objects, then ``check_pending`` plus botcore's own checks, so a misspelled hook stops start-up
    here with the plugin's name rather than silently never being called.

    :param load_entrypoints: False gives a hermetic manager (tests): no installed plugin leaks in.
    :param plugins_dir: directory (or directories) of loose plugin files to try before packaging.
    :param extra: plugin objects (modules, classes, instances) to register as well.
    :raises PluginError: import failure, bad hook signature, unknown hook, name clash.
    """
    pm = BotcorePluginManager()
    pm.add_hookspecs(hookspecs)
    if os.environ.get(ENV_TRACE, "") not in ("", "0"):
        pm.trace.root.setwriter(lambda text: trace_log.info("%s", text.rstrip()))
        pm.enable_tracing()
    blocked = _env_names(ENV_BLOCK) or set()
    if load_entrypoints:
        _load_entrypoints(pm, allow=_env_names(ENV_LOAD), blocked=blocked)
    if plugins_dir is not None:
        dirs = [plugins_dir] if isinstance(plugins_dir, (str, Path)) else list(plugins_dir)
        for directory in dirs:
            _load_dir(pm, Path(directory), blocked)
    for obj in extra:
        name = getattr(obj, "__name__", None) or f"{type(obj).__name__}-{id(obj):x}"
        _register(pm, obj, name, PluginSource("extra"))
    _register(pm, _SubmitHandoff(), HANDOFF_PLUGIN, PluginSource("internal"))
    check_plugins(pm)
    return pm


def _load_entrypoints(pm: BotcorePluginManager, *, allow: set[str] | None, blocked: set[str]) -> None:
    seen_dists: set[str] = set()
    found: dict[str, str] = {}  # entry-point name -> distribution that declared it
    wanted_seen: set[str] = set()
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] or "?"
        key = _normalize(dist_name)
        if key in seen_dists:  # the same distribution visible twice on sys.path (e.g. egg-info in cwd)
            continue
        eps = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
        if not eps:
            continue
        seen_dists.add(key)
        for ep in eps:
            ep_key = _normalize(ep.name)
            if allow is not None:
                hits = {key, ep_key} & allow
                if not hits:
                    continue
                wanted_seen |= hits
            if ep_key in blocked or key in blocked:
                log.info("plugin %r (%s) blocked by %s", ep.name, dist_name, ENV_BLOCK)
                continue
            if ep.name in found:
                raise PluginError(
                    f"two distributions declare the botcore entry point {ep.name!r}: "
                    f"{found[ep.name]} and {dist_name}; uninstall one or block it with {ENV_BLOCK}"
                )
            found[ep.name] = dist_name
            source = PluginSource("entrypoint", dist_name, dist.version, ep.value)
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"plugin {ep.name!r} ({source.describe()}) failed to import {ep.value!r}: "
                    f"{type(exc).__name__}: {exc} (skip it with {ENV_BLOCK}={ep.name})"
                ) from exc
            _register(pm, plugin, ep.name, source)
    if allow:
        missing = allow - wanted_seen
        if missing:
            raise PluginError(
                f"{ENV_LOAD} names {', '.join(sorted(missing))}, which "
                f"{'is' if len(missing) == 1 else 'are'} not an installed botcore plugin "
                f"(installed: {', '.join(sorted(found)) or 'none'})"
            )


def _load_dir(pm: BotcorePluginManager, directory: Path, blocked: set[str]) -> None:
    if not directory.is_dir():
        raise PluginError(f"plugins directory {str(directory)!r} does not exist")
    for path in sorted(directory.glob("*.py")):
        name = path.stem
        if _normalize(name) in blocked:
            log.info("plugin %r (%s) blocked by %s", name, path, ENV_BLOCK)
            continue
        source = PluginSource("file", location=str(path))
        # Not put in sys.modules: a loose file must not shadow an importable module of that name.
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise PluginError(f"cannot import plugin file {str(path)!r}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise PluginError(
                f"plugin file {str(path)!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        _register(pm, module, name, source)


def _register(pm: BotcorePluginManager, plugin: object, name: str, source: PluginSource) -> None:
    existing = pm.get_plugin(name)
    if existing is not None:
        raise PluginError(
            f"plugin name {name!r} is used twice: {pm.describe(name)} and {source.describe()}; rename one"
        )
    _check_unmarked(pm, plugin, name, source)
    try:
        registered = pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {name!r} ({source.describe()}): {exc}") from exc
    except ValueError as exc:  # the same object registered under two names
        raise PluginError(f"plugin {name!r} ({source.describe()}): {exc}") from exc
    if registered is not None:
        pm.sources[name] = source


def _check_unmarked(pm: pluggy.PluginManager, plugin: object, name: str, source: PluginSource) -> None:
    """A hook-looking function without ``@hookimpl`` is silently ignored by pluggy: refuse it."""
    specs = _spec_names()
    for attr in dir(plugin):
        if not attr.startswith("botcore_") or not callable(getattr(plugin, attr, None)):
            continue
        if pm.parse_hookimpl_opts(plugin, attr) is None and (
            attr in specs or difflib.get_close_matches(attr, specs, n=1, cutoff=0.8)
        ):
            raise PluginError(
                f"plugin {name!r} ({source.describe()}): {attr} looks like a hook implementation "
                f"but is not decorated with @botcore.hookimpl, so it would never be called"
            )


def check_plugins(pm: pluggy.PluginManager) -> None:
    """Refuse implementations of hooks that do not exist (misspellings), naming plugin and hook.

    Runs ``pm.check_pending()`` as well, which is the same check in pluggy's words.
    """
    specs = _spec_names()
    for hook_name in list(vars(pm.hook)):
        if hook_name.startswith("_"):
            continue
        caller = getattr(pm.hook, hook_name)
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            close = difflib.get_close_matches(hook_name, specs, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PluginError(
                f"{_describe(pm, impl.plugin_name)} implements unknown hook {hook_name!r}{hint} "
                f"(every hook is listed in botcore.hookspecs)"
            )
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # pragma: no cover - the loop above catches it first
        raise PluginError(str(exc)) from exc


# ---------------------------------------------------------------------------------------------
# Listing
# ---------------------------------------------------------------------------------------------


def _is_internal(name: str, source: PluginSource | None) -> bool:
    if source is not None and source.kind == "internal":
        return True
    if source is not None and source.distribution is not None:
        return _normalize(source.distribution) == INTERNAL_DISTRIBUTION
    return name.startswith("botcore.")


def list_plugins(pm: pluggy.PluginManager, all: bool = False) -> list[dict[str, Any]]:
    """Describe loaded plugins for ``botcore plugins``.

    Each entry: ``name`` (entry-point name or file stem), ``distribution`` and ``version`` (None
    for loose files), ``source`` (``entrypoint``/``file``/``extra``/``internal``), ``location``
    (entry-point target or file path) and ``hooks`` (sorted hook names it implements).
    Plugins shipped inside the ``botcore`` distribution itself and botcore's internal helpers are
    listed only with ``all=True``; first-party distributions under ``plugins/`` are always listed.
    """
    sources = pm.sources if isinstance(pm, BotcorePluginManager) else {}
    distinfo = dict(pm.list_plugin_distinfo())
    out = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        source = sources.get(name)
        if source is None and plugin in distinfo:
            dist = distinfo[plugin]
            source = PluginSource("entrypoint", dist.project_name, dist.version)
        if not all and _is_internal(name, source):
            continue
        out.append(
            {
                "name": name,
                "distribution": source.distribution if source else None,
                "version": source.version if source else None,
                "source": source.kind if source else "extra",
                "location": source.location if source else None,
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or ()),
            }
        )
    return sorted(out, key=lambda p: p["name"])


# ---------------------------------------------------------------------------------------------
# Registration collectors
# ---------------------------------------------------------------------------------------------

#: Registry field -> (hook name, singular label used in messages).
REGISTRATION_HOOKS: dict[str, tuple[str, str]] = {
    "exchanges": ("botcore_register_exchanges", "exchange"),
    "strategies": ("botcore_register_strategies", "strategy"),
    "risk_checks": ("botcore_register_risk_checks", "risk check"),
    "jobs": ("botcore_register_jobs", "job"),
    "commands": ("botcore_register_commands", "command"),
}


@dataclass
class Registry:
    """Everything plugins registered, by name.

    ``providers[kind][name]`` is the registering plugin's name; ``defaults[kind]`` holds the names
    registered from ``trylast`` implementations (replaceable, see the module docstring).
    """

    exchanges: dict[str, Callable[..., Any]] = field(default_factory=dict)
    strategies: dict[str, Callable[..., Any]] = field(default_factory=dict)
    risk_checks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    jobs: dict[str, Callable[..., Any]] = field(default_factory=dict)
    commands: dict[str, Callable[..., Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, str]] = field(
        default_factory=lambda: {kind: {} for kind in REGISTRATION_HOOKS}
    )
    defaults: dict[str, set[str]] = field(
        default_factory=lambda: {kind: set() for kind in REGISTRATION_HOOKS}, repr=False
    )

    def kind(self, kind: str) -> dict[str, Callable[..., Any]]:
        """The name -> factory mapping for ``kind`` (``"strategies"``, ...)."""
        if kind not in REGISTRATION_HOOKS:
            raise KeyError(kind)
        mapping: dict[str, Callable[..., Any]] = getattr(self, kind)
        return mapping


class _Registrar:
    """The ``register`` callable handed to one plugin's implementation of one registration hook."""

    def __init__(
        self, pm: pluggy.PluginManager, registry: Registry, kind: str, plugin: str, default: bool
    ) -> None:
        self.pm, self.registry, self.kind = pm, registry, kind
        self.plugin, self.default = plugin, default
        self.label = REGISTRATION_HOOKS[kind][1]

    def __call__(self, name: str, factory: Callable[..., Any]) -> None:
        who = _describe(self.pm, self.plugin)
        if not isinstance(name, str) or not name.strip():
            raise PluginError(f"{who} registered a {self.label} with a bad name {name!r}")
        if not callable(factory):
            raise PluginError(f"{who} registered {self.label} {name!r} with a non-callable factory")
        target = self.registry.kind(self.kind)
        providers = self.registry.providers[self.kind]
        defaults = self.registry.defaults[self.kind]
        if name in target:
            other = providers[name]
            if name in defaults and not self.default:
                log.info("%s overrides the default %s %r of plugin %r", who, self.label, name, other)
            elif self.default and name not in defaults:
                log.info("default %s %r of %s is overridden by plugin %r", self.label, name, who, other)
                return
            else:
                where = (
                    f"{who} twice" if other == self.plugin else f"both {_describe(self.pm, other)} and {who}"
                )
                raise PluginError(
                    f"{self.label} {name!r} is registered by {where}; uninstall or block one "
                    f"({ENV_BLOCK}=name), or mark the default's hookimpl trylast=True"
                )
        target[name] = factory
        providers[name] = self.plugin
        log.debug("%s registered %s %r%s", who, self.label, name, " (default)" if self.default else "")
        if self.default:
            defaults.add(name)
        else:
            defaults.discard(name)


def collect_registry(pm: pluggy.PluginManager) -> Registry:
    """Run every registration hook and gather name -> factory maps.

    Each implementation is called on its own (in pluggy's call order) with a ``register`` bound to
    that plugin, so a duplicate name can be reported with both plugins' names. See the module
    docstring for the ``trylast`` override rule.

    :raises PluginError: bad ``register`` arguments, a failing hook, or a duplicate name.
    """
    registry = Registry()
    for kind, (hook_name, _label) in REGISTRATION_HOOKS.items():
        caller = getattr(pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # pluggy calls the list back to front
            if impl.wrapper or impl.hookwrapper:
                continue
            register = _Registrar(pm, registry, kind, impl.plugin_name, bool(impl.trylast))
            kwargs = {"register": register} if "register" in impl.argnames else {}
            try:
                impl.function(**kwargs)
            except PluginError:
                raise
            except Exception as exc:
                raise PluginError(
                    f"{_describe(pm, impl.plugin_name)} failed in {hook_name}: {type(exc).__name__}: {exc}"
                ) from exc
    return registry


# ---------------------------------------------------------------------------------------------
# Typed facade
# ---------------------------------------------------------------------------------------------


class _SubmitHandoff:
    """Botcore's own ``botcore_order_submit`` implementation: the hand-off itself.

    Registered last and ``trylast`` so plain implementations run before it and wrappers wrap it,
    which is what "around-advice" promises in the hook's docstring.
    """

    def __init__(self) -> None:
        self.pending: Callable[[Any], Any] | None = None
        self.result: Any = None

    @hookimpl(trylast=True)
    def botcore_order_submit(self, order: OrderRequest) -> None:
        handoff, self.pending = self.pending, None
        if handoff is not None:
            self.result = handoff(order)


class Hooks:
    """One typed method per hook; the only way the core calls plugins.

    Registration hooks are normally run through ``registry()`` (duplicate detection); the raw
    ``register_*`` methods exist for completeness and for plugin authors' tests.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        handoff = pm.get_plugin(HANDOFF_PLUGIN)
        if handoff is None:
            handoff = _SubmitHandoff()
            pm.register(handoff, name=HANDOFF_PLUGIN)
            if isinstance(pm, BotcorePluginManager):
                pm.sources[HANDOFF_PLUGIN] = PluginSource("internal")
        self._handoff: _SubmitHandoff = handoff
        h = pm.hook
        self._order_check = h.botcore_order_check
        self._order_submit = h.botcore_order_submit
        self._order_submitted = h.botcore_order_submitted
        self._order_outcome = h.botcore_order_outcome
        self._order_filled = h.botcore_order_filled
        self._order_cancelled = h.botcore_order_cancelled
        self._quotes_decided = h.botcore_quotes_decided

    # 1. Registration
    def registry(self) -> Registry:
        return collect_registry(self.pm)

    def register_exchanges(self, register: hookspecs.Register) -> None:
        self.pm.hook.botcore_register_exchanges(register=register)

    def register_strategies(self, register: hookspecs.Register) -> None:
        self.pm.hook.botcore_register_strategies(register=register)

    def register_risk_checks(self, register: hookspecs.Register) -> None:
        self.pm.hook.botcore_register_risk_checks(register=register)

    def register_jobs(self, register: hookspecs.Register) -> None:
        self.pm.hook.botcore_register_jobs(register=register)

    def register_commands(self, register: hookspecs.Register) -> None:
        self.pm.hook.botcore_register_commands(register=register)

    # 2. Lifecycle
    def start_venue(self, config: Any) -> VenueEndpoints | None:
        result: VenueEndpoints | None = self.pm.hook.botcore_start_venue(config=config)
        return result

    def startup(self, engine: Any) -> None:
        self.pm.hook.botcore_startup(engine=engine)

    def shutdown(self, engine: Any, reason: str) -> None:
        self.pm.hook.botcore_shutdown(engine=engine, reason=reason)

    # 3. Per-event (engine thread)
    def quotes_decided(self, strategy: str, symbol: str, quotes: Sequence[Quote]) -> None:
        self._quotes_decided(strategy=strategy, symbol=symbol, quotes=quotes)

    def order_check(self, order: OrderRequest, context: Any) -> str | None:
        """The first plugin veto reason, or None."""
        result: str | None = self._order_check(order=order, context=context)
        return result

    def order_submit(self, order: OrderRequest, handoff: Callable[[OrderRequest], T]) -> T:
        """Run ``handoff(order)`` inside the ``botcore_order_submit`` hook and return its result.

        Plain implementations run first, wrappers around the whole; an exception from a plain
        implementation means the hand-off did not happen. Not re-entrant (engine thread only).
        """
        self._handoff.pending = handoff
        self._handoff.result = None
        try:
            self._order_submit(order=order)
            result: T = self._handoff.result
            return result
        finally:
            self._handoff.pending = None
            self._handoff.result = None

    def order_submitted(self, order: OrderRequest) -> None:
        self._order_submitted(order=order)

    def order_outcome(self, outcome: OrderOutcome) -> None:
        self._order_outcome(outcome=outcome)

    def order_filled(self, fill: Fill) -> None:
        self._order_filled(fill=fill)

    def order_cancelled(self, report: ExecutionReport) -> None:
        self._order_cancelled(report=report)

    def trust_changed(self, stream: str, trusted: bool, reason: str) -> None:
        self.pm.hook.botcore_trust_changed(stream=stream, trusted=trusted, reason=reason)

    def reconcile_report(self, job: str, drifts: Sequence[Any]) -> None:
        self.pm.hook.botcore_reconcile_report(job=job, drifts=drifts)
