"""The plugin manager and the only place that calls hooks.

Bundled and third-party plugins load the same way: entry points in the ``devpi_core`` group.
Bundled ones (shipped in the devpi-core distribution) are on unless ``plugins.disabled`` names
them; third-party ones are on when ``plugins.enabled`` names them, so installing a package never
silently changes a running server's behaviour.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from devpi_core import hookspecs
from devpi_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from pyramid.request import Request

    from devpi_core.config import Settings
    from devpi_core.interfaces import PasswordHasher, SimplePolicy
    from devpi_core.records import Credentials, Identity, IndexRecord, LoginToken, UploadCheck
    from devpi_core.services import ServiceRegistry
    from devpi_core.specs import (
        ConfigSection,
        IndexTypeSpec,
        MirrorSourceSpec,
        ServePolicySpec,
        StorageBackend,
    )

log = logging.getLogger(__name__)

ENTRYPOINT_GROUP = "devpi_core"
CORE_DIST = "devpi-core"
T = TypeVar("T")


@dataclass(frozen=True)
class PluginInfo:
    """One loaded plugin: its entry-point name, the distribution that ships it and its module."""

    name: str
    dist: str
    version: str
    module: str
    bundled: bool


def available_entrypoints() -> dict[str, tuple[metadata.EntryPoint, str, str]]:
    """Return ``{name: (entry point, dist name, dist version)}`` for the ``devpi_core`` group."""
    found: dict[str, tuple[metadata.EntryPoint, str, str]] = {}
    for dist in metadata.distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRYPOINT_GROUP and ep.name not in found:
                found[ep.name] = (ep, dist.metadata["Name"], dist.version)
    return found


def select_entrypoints(
    enabled: Sequence[str], disabled: Sequence[str]
) -> list[tuple[metadata.EntryPoint, str, str]]:
    """Pick the entry points to load: bundled ones minus ``disabled``, plus ``enabled``.

    Raises :class:`ConfigError` naming the available plugins when a name is unknown.
    """
    found = available_entrypoints()
    errors = [
        f"plugins.{key}: unknown plugin {name!r}; available: {', '.join(sorted(found)) or 'none'}"
        for key, names in (("enabled", enabled), ("disabled", disabled))
        for name in names
        if name not in found
    ]
    if errors:
        raise ConfigError(errors)
    chosen = []
    for name, (ep, dist, version) in sorted(found.items()):
        bundled = _is_core_dist(dist)
        if name in disabled or not (bundled or name in enabled):
            continue
        chosen.append((ep, dist, version))
    return chosen


def _is_core_dist(dist: str) -> bool:
    return dist.lower().replace("_", "-") == CORE_DIST


def make_pm(
    modules: Iterable[tuple[str, object]] = (),
    *,
    entrypoints: bool = True,
    enabled: Sequence[str] = (),
    disabled: Sequence[str] = (),
) -> Plugins:
    """Build the plugin manager.

    ``modules`` are registered directly: modules, or objects whose methods carry ``hookimpl``
    (tests use this with ``entrypoints=False`` to load core and exactly the plugins under test);
    ``entrypoints`` loads the configured entry points.
    """
    pm = pluggy.PluginManager("devpi_core")
    pm.add_hookspecs(hookspecs)
    infos: list[PluginInfo] = []
    for name in disabled:
        pm.set_blocked(name)
    for name, module in modules:
        if pm.is_blocked(name):
            continue
        pm.register(module, name=name)
        origin = getattr(module, "__name__", None) or type(module).__qualname__
        infos.append(PluginInfo(name, "(registered)", "", origin, bundled=False))
    if entrypoints:
        for ep, dist, version in select_entrypoints(enabled, disabled):
            if pm.get_plugin(ep.name) is not None:
                continue
            module = ep.load()
            pm.register(module, name=ep.name)
            infos.append(PluginInfo(ep.name, dist, version, ep.value, _is_core_dist(dist)))
    pm.check_pending()
    return Plugins(pm, infos)


def _flatten(results: Iterable[Iterable[T] | None]) -> list[T]:
    return [item for result in results if result for item in result]


def _unique(kind: str, items: list[T], key: Callable[[T], str]) -> dict[str, T]:
    seen: dict[str, T] = {}
    for item in items:
        name = key(item)
        if name in seen:
            raise ConfigError([f"two plugins provide the {kind} {name!r}"])
        seen[name] = item
    return seen


class Plugins:
    """Typed access to the hooks; flattens, deduplicates and validates what plugins return."""

    def __init__(self, pm: pluggy.PluginManager, infos: list[PluginInfo]) -> None:
        self.pm = pm
        self.infos = infos

    def names(self) -> list[str]:
        """Names of the registered plugins, in registration order."""
        return [info.name for info in self.infos]

    def implements(self, hookname: str) -> bool:
        """Whether any registered plugin implements ``hookname``."""
        return bool(getattr(self.pm.hook, hookname).get_hookimpls())

    def hooks_of(self, name: str) -> list[str]:
        """The hook names a registered plugin implements."""
        plugin = self.pm.get_plugin(name)
        return sorted(
            caller.name for caller in self.pm.get_hookcallers(plugin) or () if plugin is not None
        )

    # -- registration ----------------------------------------------------------------------
    def config_sections(self) -> dict[str, ConfigSection]:
        """Every plugin's configuration section, by name."""
        return _unique(
            "config section", _flatten(self.pm.hook.devpi_config_sections()), lambda s: s.name
        )

    def metadata_backends(self) -> dict[str, StorageBackend]:
        """Metadata store implementations by name."""
        items = _flatten(self.pm.hook.devpi_metadata_backends())
        return _unique("metadata backend", items, lambda b: b.name)

    def blob_backends(self) -> dict[str, StorageBackend]:
        """Blob store implementations by name."""
        items = _flatten(self.pm.hook.devpi_blob_backends())
        return _unique("blob backend", items, lambda b: b.name)

    def index_types(self) -> dict[str, IndexTypeSpec]:
        """Index types by name."""
        return _unique("index type", _flatten(self.pm.hook.devpi_index_types()), lambda s: s.name)

    def mirror_sources(self) -> dict[str, MirrorSourceSpec]:
        """Mirror sources by name."""
        items = _flatten(self.pm.hook.devpi_mirror_sources())
        return _unique("mirror source", items, lambda s: s.name)

    def default_indexes(self, settings: Settings) -> list[tuple[str, dict[str, Any]]]:
        """Indexes ``devpi-core init`` creates."""
        return _flatten(self.pm.hook.devpi_default_indexes(settings=settings))

    def password_hasher(self, settings: Settings) -> PasswordHasher | None:
        """The password hasher, if a plugin provides one."""
        hasher: PasswordHasher | None = self.pm.hook.devpi_password_hasher(settings=settings)
        return hasher

    def pyramid_includes(self) -> list[str | Callable[..., Any]]:
        """Pyramid includes contributed by plugins."""
        return _flatten(self.pm.hook.devpi_pyramid_includes())

    # -- per request -----------------------------------------------------------------------
    def get_credentials(self, request: Request) -> Credentials | None:
        """Credentials carried by ``request``."""
        creds: Credentials | None = self.pm.hook.devpi_get_credentials(request=request)
        return creds

    def authenticate(self, request: Request, credentials: Credentials) -> Identity | None:
        """The identity for ``credentials``, or None."""
        identity: Identity | None = self.pm.hook.devpi_authenticate(
            request=request, credentials=credentials
        )
        return identity

    def identity_groups(self, request: Request, identity: Identity) -> tuple[str, ...]:
        """Groups plugins add to ``identity``."""
        groups = _flatten(self.pm.hook.devpi_identity_groups(request=request, identity=identity))
        return tuple(dict.fromkeys([*identity.groups, *groups]))

    def issue_login_token(self, request: Request, identity: Identity) -> LoginToken | None:
        """A login token for ``identity``."""
        token: LoginToken | None = self.pm.hook.devpi_issue_login_token(
            request=request, identity=identity
        )
        return token

    def api_features(self) -> list[str]:
        """Feature strings for ``/+api``."""
        return sorted(set(_flatten(self.pm.hook.devpi_api_features())))

    def metrics(self, services: ServiceRegistry) -> list[tuple[str, str, float]]:
        """Metrics for ``/+status``."""
        return _flatten(self.pm.hook.devpi_metrics(services=services))

    def simple_policies(self, index: IndexRecord) -> list[SimplePolicy]:
        """Response-time filters for the simple pages of ``index``."""
        return _flatten(self.pm.hook.devpi_simple_policies(index=index))

    def serve_policies(self) -> dict[str, ServePolicySpec]:
        """``{name: spec}`` of every serve policy, unique names."""
        specs = _flatten(self.pm.hook.devpi_serve_policies())
        return _unique("serve policy", specs, lambda spec: spec.name)

    def mirror_auth(self, mirror_url: str, www_authenticate: str | None) -> list[str]:
        """Authorization header values to retry an upstream with."""
        return _flatten(
            self.pm.hook.devpi_mirror_auth(mirror_url=mirror_url, www_authenticate=www_authenticate)
        )

    def check_upload(self, check: UploadCheck) -> None:
        """Ask every plugin whether ``check``'s file may be stored; the first refusal (a
        ``DevpiError``) propagates to the client."""
        self.pm.hook.devpi_check_upload(check=check)

    # -- lifecycle -------------------------------------------------------------------------
    def startup(self, services: ServiceRegistry) -> list[str]:
        """Run every plugin's ``devpi_startup``; return the plugins started, in order.

        Each plugin is called on its own (through pluggy, restricted to that plugin), so that
        shutdown can run in exactly the reverse order and skip plugins that never started: when
        one start-up fails, the ones already started are shut down and the error propagates.
        """
        starting = self._lifecycle_order("devpi_startup")
        # a plugin with only a devpi_shutdown counts as started first, so it stops last
        started = [n for n in self._lifecycle_order("devpi_shutdown") if n not in starting]
        for name in starting:
            try:
                self._only(name, "devpi_startup")(services=services)
            except BaseException:
                self.shutdown(services, started)
                raise
            started.append(name)
        return started

    def shutdown(self, services: ServiceRegistry, started: Sequence[str]) -> None:
        """Run ``devpi_shutdown`` of the plugins in ``started`` (which :meth:`startup`
        returned) in reverse order; an exception is logged and the others still run."""
        implementing = set(self._lifecycle_order("devpi_shutdown"))
        for name in reversed(started):
            if name not in implementing:
                continue
            try:
                self._only(name, "devpi_shutdown")(services=services)
            except Exception:  # one plugin's failure must not keep the stores open
                log.exception("devpi_shutdown of plugin %s failed", name)

    def _lifecycle_order(self, hookname: str) -> list[str]:
        # pluggy calls the implementations last-registered first (tryfirst/trylast applied)
        impls = getattr(self.pm.hook, hookname).get_hookimpls()
        return list(dict.fromkeys(impl.plugin_name for impl in reversed(impls)))

    def _only(self, name: str, hookname: str) -> Any:
        others = [plugin for other, plugin in self.pm.list_name_plugin() if other != name]
        return self.pm.subset_hook_caller(hookname, remove_plugins=others)

    # -- events ----------------------------------------------------------------------------
    def emit(self, event: object, services: ServiceRegistry) -> None:
        """Fire the event hook matching ``event``'s type; a plugin's exception is only logged.

        The hook is called through pluggy (``pm.hook.devpi_on_upload(event=event,
        services=services)``: the running server's services, for the plugin's own), so
        implementations run in pluggy's order (last registered first, ``tryfirst``/``trylast``),
        may take fewer arguments than the spec, and wrappers (``wrapper=True`` or
        ``hookwrapper=True``) see the event, the results and any exception.

        Events fire after the write was committed, so nothing a plugin does may fail the
        request: the call is wrapped here, outside every plugin's wrapper, and an exception is
        logged with the name of the plugin whose code raised it. Following pluggy's
        documented semantics, that exception ends the call: implementations that would have
        run after it are skipped and the wrappers around it see it. The alternative, keeping
        the others running, needs each implementation called on its own (which breaks
        wrappers, the point of going through pluggy) or pluggy's private call loop; a plugin
        doing fallible work (a webhook) should catch its own errors.
        """
        hookname = _EVENT_HOOKS.get(type(event).__name__)
        if hookname is None:
            raise TypeError(f"not an event: {event!r}")
        caller = getattr(self.pm.hook, hookname)
        try:
            caller(event=event, services=services)
        except Exception as exc:  # a plugin's bug must not fail a committed write
            culprit = _raising_plugin(caller.get_hookimpls(), exc)
            log.exception("event hook %s of plugin %s failed", hookname, culprit)


def _raising_plugin(impls: Sequence[pluggy.HookImpl], exc: BaseException) -> str:
    """The plugin whose implementation is deepest in ``exc``'s traceback ("?" if none is)."""
    by_code: dict[object, list[pluggy.HookImpl]] = {}
    for impl in impls:
        by_code.setdefault(getattr(impl.function, "__code__", None), []).append(impl)
    culprit = "?"
    tb = exc.__traceback__
    while tb is not None:
        candidates = by_code.get(tb.tb_frame.f_code, [])
        # one class registered twice shares its code: the frame's ``self`` tells them apart
        owner = tb.tb_frame.f_locals.get("self")
        for impl in candidates:
            if len(candidates) == 1 or impl.plugin is owner:
                culprit = impl.plugin_name
        tb = tb.tb_next
    return culprit


_EVENT_HOOKS = {
    "UploadEvent": "devpi_on_upload",
    "DeleteEvent": "devpi_on_delete",
    "IndexEvent": "devpi_on_index_change",
    "MirrorRefreshEvent": "devpi_on_mirror_refresh",
}

__all__ = ["ENTRYPOINT_GROUP", "PluginInfo", "Plugins", "make_pm", "select_entrypoints"]
