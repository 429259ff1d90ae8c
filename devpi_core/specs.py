"""Registration objects that plugins return from hooks.

Each is a frozen dataclass: a name plus what core needs to use the contribution. Core gathers
them at start-up, refuses duplicate names (naming both plugins) and lists valid names when the
configuration asks for an unknown one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devpi_core.config_fields import (
    Setting,
    build,
    defaults_of,
    help_of,
    optional_tuple,
    schema_of,
    setting,
    size_setting,
)
from devpi_core.outbound import OutboundPolicy

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from devpi_core.indextypes import IndexEnv, IndexType
    from devpi_core.interfaces import BlobStore, MetadataStore, MirrorSource, ServePolicy
    from devpi_core.records import IndexRecord
    from devpi_core.services import ServiceRegistry


@dataclass(frozen=True)
class ConfigSection:
    """Settings a plugin owns under ``plugins.<name>`` in the YAML file.

    Declare the section once, as a frozen dataclass whose fields are made with
    :func:`setting` (or :func:`size_setting`), and return ``ConfigSection.declare(name, cls)``:
    ``schema``, ``defaults`` and ``help`` are then derived from the fields, and
    ``Settings.section(name, cls)`` returns the typed object. ``settings`` is that dataclass
    (None for a section written the older way, as the three mappings directly).

    ``schema`` is a JSON-Schema ``properties`` mapping; core wraps it in an object with
    ``additionalProperties: false``. ``defaults`` fills keys the file leaves out. ``help`` documents
    each key for ``devpi-core plugins`` and the generated configuration reference.
    """

    name: str
    schema: Mapping[str, Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    help: Mapping[str, str] = field(default_factory=dict)
    settings: type | None = None

    @classmethod
    def declare(cls, name: str, settings: type) -> ConfigSection:
        """The section ``plugins.<name>`` declared by the settings dataclass ``settings``."""
        return cls(name, schema_of(settings), defaults_of(settings), help_of(settings), settings)


@dataclass(frozen=True)
class StorageBackend:
    """A metadata or blob store implementation, chosen by ``storage.metadata``/``storage.blobs``.

    ``factory(serverdir, settings)`` builds the store; ``settings`` is the configuration section
    named by ``section`` (the providing plugin's own, usually).
    """

    name: str
    factory: Callable[[str, Mapping[str, Any]], MetadataStore | BlobStore]
    description: str = ""
    section: str = ""


@dataclass(frozen=True)
class IndexKey:
    """One index configuration key of an index type.

    ``kind`` drives coercion of the strings devpi-client sends: ``bool``, ``int``, ``str``,
    ``list`` (comma string or list), ``acl`` (a list whose ``:anonymous:``-style entries are
    upper-cased), ``names`` (a list of normalized project names, ``*`` allowed), ``choice`` (one of
    ``choices``), ``url`` (http or https) and ``json`` (stored as given). ``outbound`` marks a URL
    the server itself connects to (a mirror's upstream): a value that names an address
    ``server.outbound_allow`` does not allow (a loopback or private IP literal, ``localhost``) is
    refused when the index is created or changed. ``check`` validates and normalizes the coerced
    value (each item of a list kind separately): it returns the stored form or raises
    ``ValueError``, which becomes a 400 naming the key (nothing is stored).

    .. versionadded:: 0.2 ``check``
    """

    name: str
    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    help: str = ""
    secret: bool = False
    outbound: bool = False
    check: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class IndexTypeSpec:
    """An index type such as ``stage`` or ``mirror``.

    ``factory(env, record)`` returns the object that serves one index of this type; it answers
    for the type's rules too (which indexes serve its projects, who may upload, what may be
    deleted: see :class:`~devpi_core.indextypes.IndexType`). ``keys`` are the configuration keys
    it accepts besides ``type``; a key of kind ``bases`` must name existing indexes.
    ``is_mirror`` marks a type whose indexes cache an upstream (a stage puts them at the end of
    its resolution order and subjects them to its ``mirror_whitelist``). ``defaults(env, owner)``
    gives values a new index of ``owner`` gets for keys its creator left out, where they depend
    on the running server or the owner (a mirror's upstream is the configured default one; a
    stage's ``acl_upload`` is its owner), unlike an ``IndexKey`` default.

    .. versionchanged:: 0.2 ``defaults`` receives the owner; ``merges_bases`` is gone: a type
       whose :meth:`~devpi_core.indextypes.IndexType.bases` are empty is never walked past.
    """

    name: str
    factory: Callable[[IndexEnv, IndexRecord], IndexType]
    keys: tuple[IndexKey, ...]
    is_mirror: bool = False
    validate: Callable[[Mapping[str, Any]], list[str]] | None = None
    defaults: Callable[[IndexEnv, str], Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class ServePolicySpec:
    """A policy over what indexes serve (a release-age cooldown, an allow list, ...).

    ``keys`` are index configuration keys the policy adds to every index type. ``factory`` is
    called once when the web app is built, with the server's services (after ``devpi_startup``),
    and returns the :class:`~devpi_core.interfaces.ServePolicy` core consults.

    .. versionadded:: 0.2
    """

    name: str
    keys: tuple[IndexKey, ...]
    factory: Callable[[ServiceRegistry], ServePolicy]


@dataclass(frozen=True)
class MirrorSourceOptions:
    """What a mirror source is built with, for one mirror index.

    ``url`` is the index's ``mirror_url`` (never with credentials); ``credentials`` are the
    ``(username, password)`` configured for the index and for the origin of ``url`` (None when
    they were configured for another origin), to be sent only to that origin (scheme, host and
    port), never across a redirect to another one.
    ``timeout`` bounds every page request (connect and each read), ``list_timeout`` the project
    list, ``file_timeout`` connecting to and each read of a file. ``extra_authorization`` returns
    ``Authorization`` values to retry with after a 401/403 (the ``devpi_mirror_auth`` hook),
    given the upstream's ``WWW-Authenticate``. ``settings`` is the mirror plugin's section.
    ``outbound`` is the server's host policy: every connection of the source must obey it
    (:func:`devpi_core.outbound_session.guarded_session` builds a session that does).
    """

    index: str
    url: str
    credentials: tuple[str, str] | None = None
    timeout: float = 5.0
    list_timeout: float = 30.0
    file_timeout: float = 30.0
    user_agent: str = "devpi-core"
    extra_authorization: Callable[[str | None], list[str]] = lambda _www_authenticate: []
    settings: Mapping[str, Any] = field(default_factory=dict)
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)


@dataclass(frozen=True)
class MirrorSourceSpec:
    """How a mirror index reads its upstream, chosen by the index key ``mirror_source``.

    ``factory(options)`` returns a :class:`~devpi_core.interfaces.MirrorSource` for one index.
    """

    name: str
    factory: Callable[[MirrorSourceOptions], MirrorSource]
    description: str = ""


__all__ = [
    "ConfigSection",
    "IndexKey",
    "IndexTypeSpec",
    "MirrorSourceOptions",
    "MirrorSourceSpec",
    "ServePolicySpec",
    "Setting",
    "StorageBackend",
    "build",
    "optional_tuple",
    "setting",
    "size_setting",
]
