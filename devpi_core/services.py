"""Typed access to the services of a running server.

Services live in the Pyramid registry under their class (never a string). Core and plugins look
them up only through functions like these. A plugin builds and registers its own services at
start-up, in its ``devpi_startup(services)`` hook, on the :class:`ServiceRegistry` it receives,
and adds accessors in its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from devpi_core.blob_gc import BlobCollector
from devpi_core.config import Settings
from devpi_core.interfaces import BlobStore, MetadataStore
from devpi_core.model.indexes import Indexes
from devpi_core.model.users import Users
from devpi_core.plugins import Plugins
from devpi_core.serverdir import ServerDir

if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping

    from pyramid.registry import Registry
    from pyramid.request import Request

    from devpi_core.outbound import OutboundPolicy

T = TypeVar("T")


class _Shutdown:
    """Callbacks run when the server stops (close sessions, flush state)."""

    def __init__(self) -> None:
        self.callbacks: list[Callable[[], None]] = []


# Keys are classes, often abstract ones (MetadataStore): Callable[..., T] accepts those where
# type[T] would make mypy ask for a concrete class.
def register(registry: MutableMapping[Any, Any], key: Callable[..., T], instance: T) -> None:
    """Make ``instance`` the service for ``key``."""
    registry[key] = instance


def lookup(registry: MutableMapping[Any, Any], key: Callable[..., T]) -> T:
    """The service registered for ``key``; KeyError if none."""
    instance: T = registry[key]
    return instance


def on_shutdown(registry: MutableMapping[Any, Any], callback: Callable[[], None]) -> None:
    """Run ``callback`` when the server shuts down (in reverse order of registration)."""
    if _Shutdown not in registry:
        registry[_Shutdown] = _Shutdown()
    lookup(registry, _Shutdown).callbacks.append(callback)


def shutdown(registry: MutableMapping[Any, Any]) -> None:
    """Run the shutdown callbacks; called once by the server or a test fixture."""
    hooks = registry.get(_Shutdown)
    if hooks is None:
        return
    while hooks.callbacks:
        hooks.callbacks.pop()()


class ServiceRegistry:
    """The services of one server process, keyed by class: what core opened (settings, stores,
    users, indexes) and what plugins registered in ``devpi_startup``.

    The same object whether the process serves HTTP or runs a command (``devpi-core init``,
    ``passwd``): index types and lifecycle hooks get it instead of the Pyramid registry.
    """

    def __init__(self, registry: MutableMapping[Any, Any]) -> None:
        self.registry = registry

    @classmethod
    def of(cls, source: Request | Registry | ServiceRegistry) -> ServiceRegistry:
        """The services of the server ``source`` (a request or a registry) belongs to."""
        return source if isinstance(source, ServiceRegistry) else cls(_reg(source))

    def register(self, key: Callable[..., T], instance: T) -> None:
        """Make ``instance`` the service for ``key`` (a class, often an ABC)."""
        register(self.registry, key, instance)

    def get(self, key: Callable[..., T]) -> T:
        """The service registered for ``key``; LookupError naming it if there is none."""
        found = self.find(key)
        if found is None:
            name = getattr(key, "__qualname__", repr(key))
            raise LookupError(f"no service {name} is registered (is its plugin enabled?)")
        return found

    def find(self, key: Callable[..., T]) -> T | None:
        """The service registered for ``key``, or None."""
        found: T | None = self.registry.get(key)
        return found

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the process stops (in reverse order of registration)."""
        on_shutdown(self.registry, callback)


def _reg(source: Request | Registry | ServiceRegistry) -> Any:
    return getattr(source, "registry", source)


def settings(source: Request | Registry | ServiceRegistry) -> Settings:
    """The validated configuration."""
    return lookup(_reg(source), Settings)


def serverdir(source: Request | Registry | ServiceRegistry) -> ServerDir:
    """The server directory (uuid, secret, temp space)."""
    return lookup(_reg(source), ServerDir)


def plugins(source: Request | Registry | ServiceRegistry) -> Plugins:
    """Typed hook calls."""
    return lookup(_reg(source), Plugins)


def metadata_store(source: Request | Registry | ServiceRegistry) -> MetadataStore:
    """The metadata store."""
    return lookup(_reg(source), MetadataStore)


def blob_store(source: Request | Registry | ServiceRegistry) -> BlobStore:
    """The blob store."""
    return lookup(_reg(source), BlobStore)


def blob_collector(source: Request | Registry | ServiceRegistry) -> BlobCollector:
    """Blob garbage collection of the web app (``sweep()`` runs it now)."""
    return lookup(_reg(source), BlobCollector)


def outbound_policy(source: Request | Registry | ServiceRegistry) -> OutboundPolicy:
    """The hosts the server may connect to (``server.outbound_allow``/``outbound_deny``)."""
    return indexes(source).outbound


def users(source: Request | Registry | ServiceRegistry) -> Users:
    """User records."""
    return lookup(_reg(source), Users)


def indexes(source: Request | Registry | ServiceRegistry) -> Indexes:
    """Index records, types and resolution."""
    return lookup(_reg(source), Indexes)
