"""Typed access to the services of a running server.

Services live in the Pyramid registry under their class (never a string). Core and plugins look
them up only through functions like these; a plugin registers its own services with
:func:`register` from its Pyramid include and adds accessors in its own module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from devpi_core.config import Settings
from devpi_core.interfaces import BlobStore, MetadataStore
from devpi_core.model.indexes import Indexes
from devpi_core.model.users import Users
from devpi_core.plugins import Plugins
from devpi_core.serverdir import ServerDir

if TYPE_CHECKING:
    from collections.abc import Callable

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
def register(registry: Registry, key: Callable[..., T], instance: T) -> None:
    """Make ``instance`` the service for ``key``."""
    registry[key] = instance


def lookup(registry: Registry, key: Callable[..., T]) -> T:
    """The service registered for ``key``; KeyError if none."""
    instance: T = registry[key]
    return instance


def on_shutdown(registry: Registry, callback: Callable[[], None]) -> None:
    """Run ``callback`` when the server shuts down (in reverse order of registration)."""
    if _Shutdown not in registry:
        registry[_Shutdown] = _Shutdown()
    lookup(registry, _Shutdown).callbacks.append(callback)


def shutdown(registry: Registry) -> None:
    """Run the shutdown callbacks; called once by the server or a test fixture."""
    hooks = registry.get(_Shutdown)
    if hooks is None:
        return
    while hooks.callbacks:
        hooks.callbacks.pop()()


def _reg(source: Request | Registry) -> Any:
    return getattr(source, "registry", source)


def settings(source: Request | Registry) -> Settings:
    """The validated configuration."""
    return lookup(_reg(source), Settings)


def serverdir(source: Request | Registry) -> ServerDir:
    """The server directory (uuid, secret, temp space)."""
    return lookup(_reg(source), ServerDir)


def plugins(source: Request | Registry) -> Plugins:
    """Typed hook calls."""
    return lookup(_reg(source), Plugins)


def metadata_store(source: Request | Registry) -> MetadataStore:
    """The metadata store."""
    return lookup(_reg(source), MetadataStore)


def blob_store(source: Request | Registry) -> BlobStore:
    """The blob store."""
    return lookup(_reg(source), BlobStore)


def outbound_policy(source: Request | Registry) -> OutboundPolicy:
    """The hosts the server may connect to (``server.outbound_allow``/``outbound_deny``)."""
    return indexes(source).outbound


def users(source: Request | Registry) -> Users:
    """User records."""
    return lookup(_reg(source), Users)


def indexes(source: Request | Registry) -> Indexes:
    """Index records, types and resolution."""
    return lookup(_reg(source), Indexes)
