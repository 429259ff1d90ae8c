"""Turning configuration into running services: plugins, stores, users, indexes.

Used by the CLI (``init``, ``serve``, ``passwd``) and by ``make_app``; no Pyramid here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from devpi_core.config import RawConfig, Settings, plugin_lists, settings_for
from devpi_core.errors import ConfigError, DevpiError, StartupError
from devpi_core.indextypes import IndexEnv
from devpi_core.interfaces import BlobStore, MetadataStore, PasswordHasher
from devpi_core.model.indexes import Indexes
from devpi_core.model.users import Users
from devpi_core.outbound import OutboundPolicy
from devpi_core.plugins import Plugins, available_entrypoints, make_pm
from devpi_core.serverdir import ServerDir
from devpi_core.services import ServiceRegistry

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, MutableMapping, Sequence


def load_plugins(
    raw: RawConfig | None,
    *,
    modules: Iterable[tuple[str, object]] = (),
    entrypoints: bool = True,
) -> tuple[Plugins, Settings]:
    """Build the plugin manager the file asks for, then validate the file against it.

    Every problem is reported at once, in file order: unknown plugin names, schema violations
    and storage backends no active plugin provides.
    """
    enabled, disabled = plugin_lists(raw)
    modules = list(modules)
    known = [name for name, _ in modules]
    errors: list[str] = []
    if entrypoints:
        known += available_entrypoints()
        errors += _unknown_plugins(raw, {"enabled": enabled, "disabled": disabled}, known)
        enabled = tuple(name for name in enabled if name in known)
        disabled = tuple(name for name in disabled if name in known)
    plugins = make_pm(modules, entrypoints=entrypoints, enabled=enabled, disabled=disabled)
    try:
        settings = settings_for(raw, plugins, known)
    except ConfigError as exc:
        errors += exc.errors
    else:
        errors += _unknown_backends(raw, plugins, settings)
    if errors:
        raise ConfigError(sorted(errors, key=_line_number))
    return plugins, settings


def _line_number(error: str) -> int:
    match = re.match(r"^.*?:(\d+): ", error)
    return int(match.group(1)) if match else 0


def _unknown_plugins(
    raw: RawConfig | None, lists: Mapping[str, Sequence[str]], known: Sequence[str]
) -> list[str]:
    if raw is None:
        return []
    available = ", ".join(sorted(known)) or "none"
    return [
        f"{raw.line_of(['plugins', key, position])}: plugins.{key}: unknown plugin {name!r}; "
        f"available: {available}"
        for key, names in lists.items()
        for position, name in enumerate(names)
        if name not in known
    ]


def _unknown_backends(raw: RawConfig | None, plugins: Plugins, settings: Settings) -> list[str]:
    offered = {"metadata": plugins.metadata_backends(), "blobs": plugins.blob_backends()}
    return [
        (f"{raw.line_of(['storage', kind])}: " if raw is not None else "")
        + _unknown_backend(kind, getattr(settings.storage, kind), backends)
        for kind, backends in offered.items()
        if getattr(settings.storage, kind) not in backends
    ]


def _unknown_backend(kind: str, name: str, backends: Mapping[str, Any]) -> str:
    available = ", ".join(sorted(backends)) or "none (no storage plugin)"
    return f"storage.{kind}: unknown backend {name!r}; available: {available}"


def _choose(kind: str, backends: Mapping[str, Any], name: str) -> Any:
    if name not in backends:  # load_plugins reported it already; settings built otherwise
        raise ConfigError([_unknown_backend(kind, name, backends)])
    return backends[name]


def open_stores(plugins: Plugins, settings: Settings) -> tuple[MetadataStore, BlobStore]:
    """Build the configured metadata and blob stores."""
    serverdir = settings.server.serverdir
    meta = _choose("metadata", plugins.metadata_backends(), settings.storage.metadata)
    blob = _choose("blobs", plugins.blob_backends(), settings.storage.blobs)
    store = meta.factory(serverdir, settings.plugin(meta.section))
    blobs = blob.factory(serverdir, settings.plugin(blob.section))
    if not isinstance(store, MetadataStore) or not isinstance(blobs, BlobStore):
        raise StartupError("a storage plugin returned an object of the wrong kind")
    return store, blobs


class _MissingHasher(PasswordHasher):
    def _fail(self) -> None:
        raise StartupError("no plugin provides password hashing; enable 'passwd'")

    def hash(self, password: str) -> str:
        self._fail()
        return ""

    def verify(self, password: str, pwhash: str) -> bool:
        self._fail()
        return False

    def needs_update(self, pwhash: str) -> bool:
        return False


@dataclass
class Core:
    """The storage-level services (everything but HTTP) and the plugins started on them."""

    plugins: Plugins
    settings: Settings
    serverdir: ServerDir
    store: MetadataStore
    blobs: BlobStore
    users: Users
    indexes: Indexes
    env: IndexEnv
    services: ServiceRegistry
    started: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Shut the plugins down (reverse start-up order), then close the stores; once."""
        started, self.started = self.started, []
        self.plugins.shutdown(self.services, started)
        self.store.close()


def _shared(store: MetadataStore, serverdir: ServerDir) -> ServerDir:
    """The server directory with the uuid and token secret of every node sharing ``store``
    (the first node's), so a login token made by one node verifies on every other."""
    try:
        uuid, secret = store.shared_identity(serverdir.uuid, serverdir.secret)
    except BaseException:
        store.close()
        raise
    if (uuid, secret) == (serverdir.uuid, serverdir.secret):
        return serverdir
    return replace(serverdir, uuid=uuid, secret=secret)


def open_core(
    plugins: Plugins,
    settings: Settings,
    serverdir: ServerDir,
    registry: MutableMapping[Any, Any] | None = None,
) -> Core:
    """Open the stores, register core's services in ``registry`` (a new one if None: a command
    without a web app) and start the plugins (``devpi_startup``). Close with ``Core.close``."""
    store, blobs = open_stores(plugins, settings)
    serverdir = _shared(store, serverdir)
    hasher = plugins.password_hasher(settings) or _MissingHasher()
    users = Users(store, lambda: hasher)
    services = ServiceRegistry({} if registry is None else registry)
    env = IndexEnv(
        store=store,
        blobs=blobs,
        tmpdir=serverdir.tmpdir,
        services=services,
        offline=settings.server.offline_mode,
        emit=functools.partial(plugins.emit, services=services),
        max_upload_size=settings.server.max_upload_size,
        check_upload=plugins.check_upload,
    )
    policy_keys = [key for spec in plugins.serve_policies().values() for key in spec.keys]
    indexes = Indexes(
        env,
        plugins.index_types(),
        OutboundPolicy.from_settings(settings.server),
        extra_keys=policy_keys,
    )
    for key, instance in (
        (Settings, settings),
        (ServerDir, serverdir),
        (Plugins, plugins),
        (MetadataStore, store),
        (BlobStore, blobs),
        (Users, users),
        (Indexes, indexes),
    ):
        services.register(key, instance)
    core = Core(plugins, settings, serverdir, store, blobs, users, indexes, env, services)
    try:
        core.started = plugins.startup(services)
    except BaseException:
        store.close()
        raise
    return core


def initialise_data(
    users: Users,
    indexes: Indexes,
    *,
    plugins: Plugins,
    settings: Settings,
    root_password: str,
    default_indexes: bool,
) -> list[str]:
    """Create user root and the plugins' default indexes; return what was created.

    Idempotent: what exists is left alone. Run it on the stores that will serve (an in-memory
    store forgets everything a separate, closed core wrote).
    """
    created = []
    if users.get("root") is None:
        users.create("root", {"password": root_password})
        created.append("user root")
    if default_indexes:
        for fullname, config in plugins.default_indexes(settings):
            if indexes.get(fullname) is None:
                user, name = fullname.split("/", 1)
                try:
                    indexes.create(user, name, config)
                except DevpiError as exc:  # e.g. a default_url that server.outbound_allow refuses
                    raise StartupError(f"cannot create {fullname}: {exc.message}") from None
                created.append(f"index {fullname}")
    return created
