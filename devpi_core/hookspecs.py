"""The whole plugin contract of devpi-core.

Plugins implement these with ``devpi_core.hookimpl``. Registration hooks return frozen
dataclasses from :mod:`devpi_core.specs`; core gathers them, refuses duplicates and validates
configuration against them. Only ``devpi_core/plugins.py`` calls hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from collections.abc import Callable

    from pyramid.request import Request

    from devpi_core.config import Settings
    from devpi_core.interfaces import PasswordHasher, SimplePolicy
    from devpi_core.records import (
        Credentials,
        DeleteEvent,
        Identity,
        IndexEvent,
        IndexRecord,
        LoginToken,
        MirrorRefreshEvent,
        UploadCheck,
        UploadEvent,
    )
    from devpi_core.services import ServiceRegistry
    from devpi_core.specs import (
        ConfigSection,
        IndexTypeSpec,
        MirrorSourceSpec,
        ServePolicySpec,
        StorageBackend,
    )

hookspec = pluggy.HookspecMarker("devpi_core")


# -- config ---------------------------------------------------------------------------------
@hookspec
def devpi_config_sections() -> list[ConfigSection]:
    """Declare the settings a plugin owns under ``plugins.<name>``.

    Called once while the configuration is loaded, before anything else. All results are
    collected; a section name may be declared by one plugin only.

    .. versionadded:: 0.1
    """


# -- lifecycle ------------------------------------------------------------------------------
@hookspec
def devpi_startup(services: ServiceRegistry) -> None:
    """Start what the plugin keeps for the life of the process and register it as a service.

    Called once per process after the stores are open and core's services are registered:
    when the server starts (before it serves) and in commands that open the stores
    (``devpi-core init``, ``passwd``). Build connection pools, threads and caches here and
    register them with ``services.register(MyService, instance)``; index types reach them
    with ``env.services.get(MyService)``, views with ``services.get`` or an accessor of the
    plugin's own. All implementations are called, one plugin after the other in pluggy's order;
    an exception aborts the start (plugins already started are shut down again).

    :param services: the process's services, keyed by class.

    .. versionadded:: 0.2
    """


@hookspec
def devpi_shutdown(services: ServiceRegistry) -> None:
    """Stop what ``devpi_startup`` started: flush queues, join threads, close connections.

    Called once per process when it stops (after the last request, before the stores close),
    for every plugin whose ``devpi_startup`` ran, in the reverse order of start-up. All
    implementations are called; an exception is logged with the plugin's name and the others
    still run.

    :param services: the process's services, keyed by class.

    .. versionadded:: 0.2
    """


# -- storage --------------------------------------------------------------------------------
@hookspec
def devpi_metadata_backends() -> list[StorageBackend]:
    """Offer metadata store implementations, chosen by name with ``storage.metadata``.

    Called once at start-up. All results are collected; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_blob_backends() -> list[StorageBackend]:
    """Offer blob store implementations, chosen by name with ``storage.blobs``.

    Called once at start-up. All results are collected; names must be unique.

    .. versionadded:: 0.1
    """


# -- auth -----------------------------------------------------------------------------------
@hookspec(firstresult=True)
def devpi_get_credentials(request: Request) -> Credentials | None:
    """Extract the credentials a request carries (a header, a client certificate, ...).

    Called once per request that needs an identity. First non-None result wins; return None
    when the request carries nothing you understand.

    :param request: the Pyramid request.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def devpi_authenticate(request: Request, credentials: Credentials) -> Identity | None:
    """Turn credentials into an identity (a login token, a password, an LDAP bind, ...).

    Called once per request with credentials, and by ``POST /+login``. First non-None result
    wins; return None when these credentials are not yours or do not check out. Look users up
    with ``devpi_core.services.users(request)``.

    :param request: the Pyramid request.
    :param credentials: what :func:`devpi_get_credentials` found.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_identity_groups(request: Request, identity: Identity) -> list[str]:
    """Add group names to an authenticated identity; ACL entries ``:group`` match them.

    Called once per authenticated request. All results are collected and merged.

    :param request: the Pyramid request.
    :param identity: the identity :func:`devpi_authenticate` returned.

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def devpi_password_hasher(settings: Settings) -> PasswordHasher | None:
    """Provide the password hasher for local users.

    Called once at start-up. First non-None result wins.

    :param settings: the validated configuration (read your section with ``settings.plugin``).

    .. versionadded:: 0.1
    """


@hookspec(firstresult=True)
def devpi_issue_login_token(request: Request, identity: Identity) -> LoginToken | None:
    """Issue the signed, expiring token that ``POST /+login`` returns.

    Called after a successful password check at login. First non-None result wins.

    :param request: the Pyramid request.
    :param identity: who logged in.

    .. versionadded:: 0.1
    """


# -- index types ----------------------------------------------------------------------------
@hookspec
def devpi_index_types() -> list[IndexTypeSpec]:
    """Offer index types (``stage``, ``mirror``, ...).

    Called once at start-up. All results are collected; type names must be unique. Each
    type's ``IndexType`` objects serve its data and answer for its rules: which indexes make
    up its pages (``resolution_order``, ``bases``, ``contributors``), who may upload
    (``allows``) and what may be deleted (``may_delete``); see :doc:`plugins`.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_default_indexes(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """Name indexes that ``devpi-core init`` creates, as ``("user/index", config)`` pairs.

    Called once by ``devpi-core init`` (not with ``--no-default-indexes``). All results are
    collected; the owning user must be ``root``.

    :param settings: the validated configuration (a plugin may read its own section).

    .. versionadded:: 0.1
    """


# -- mirror sources -------------------------------------------------------------------------
@hookspec
def devpi_mirror_sources() -> list[MirrorSourceSpec]:
    """Offer ways to read an upstream index, chosen per mirror index by ``mirror_source``.

    Called once at start-up. All results are collected; names must be unique.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_mirror_auth(mirror_url: str, www_authenticate: str | None) -> list[str]:
    """Supply ``Authorization`` header values to try when an upstream answers 401 or 403.

    Called by a mirror source after such an answer, for credential rotation or tokens obtained
    at run time. All results are collected and tried in order.

    :param mirror_url: the mirror's upstream URL, without credentials.
    :param www_authenticate: the upstream's ``WWW-Authenticate`` header, if any.

    .. versionadded:: 0.1
    """


# -- web ------------------------------------------------------------------------------------
@hookspec
def devpi_pyramid_includes() -> list[str | Callable[..., Any]]:
    """Name Pyramid includes (dotted names or callables) that add routes, views and assets.

    Called once while the app is built, after core routes exist, so plugins can add views to
    core routes; two plugins claiming the same route and predicates are a start-up conflict.
    All results are collected and included in plugin order.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_api_features() -> list[str]:
    """Add feature strings to ``GET /+api`` (devpi-client gates behaviour on them).

    Called per ``/+api`` request. All results are collected, deduplicated and sorted.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_metrics(services: ServiceRegistry) -> list[tuple[str, str, float]]:
    """Report ``(name, "counter"|"gauge", value)`` triples for ``GET /+status`` and
    ``GET /+metrics``.

    Called per ``/+status`` request and per ``/+metrics`` scrape. All results are collected.
    Names must be valid Prometheus metric names; ``/+metrics`` adds ``_total`` to counters.

    :param services: the server's services (read your counters from your own service).

    .. versionadded:: 0.1
    .. versionchanged:: 0.2 the ``services`` argument.
    """


# -- uploads --------------------------------------------------------------------------------
@hookspec
def devpi_check_upload(check: UploadCheck) -> None:
    """Refuse a file before it is stored (a license policy, a name deny-list, a size quota).

    Called once per file that arrives on an index, however it arrives: a legacy upload
    (twine, ``devpi upload``, ``setup.py upload``), a documentation upload, a push from another
    index of this server, a tox result; after the request was authorized and the content
    checked, before anything is stored. All implementations are called, in pluggy's order,
    until one refuses. To refuse, raise a ``devpi_core.errors`` exception (``BadRequest``,
    ``Forbidden``, ``Conflict``, ...): the client gets its status and message (twine and
    ``devpi upload`` print it), nothing is stored and ``devpi_on_upload`` does not fire.
    Return None to let the file through. Runs outside the write lock, but the upload waits.

    :param check: which file, where, by whom, how, with the release's metadata.

    .. versionadded:: 0.2
    """


# -- events ---------------------------------------------------------------------------------
@hookspec
def devpi_on_upload(event: UploadEvent, services: ServiceRegistry) -> None:
    """React to a file stored on an index (webhooks, search indexing, docs unpacking).

    Called after the metadata commit, in the request thread, through pluggy: wrappers
    (``wrapper=True``) see the event and the results. An exception is logged with the plugin's
    name and does not fail the upload; as in pluggy, it ends the call (implementations that
    would run after it are skipped), so catch errors of fallible work (a webhook) yourself.

    :param event: what was stored, where, by whom, at which serial.
    :param services: the running server's services (the plugin's own included); every event
        hook receives them, and an implementation may leave the argument out.

    .. versionadded:: 0.1
    """


@hookspec
def devpi_on_delete(event: DeleteEvent, services: ServiceRegistry) -> None:
    """React to a project, version or file removed from an index.

    Called after the commit, like ``devpi_on_upload``: an exception is logged and ends the call.

    :param event: what was removed.
    :param services: the running server's services (as for ``devpi_on_upload``).

    .. versionadded:: 0.1
    """


@hookspec
def devpi_on_index_change(event: IndexEvent, services: ServiceRegistry) -> None:
    """React to an index created, modified or deleted.

    Called after the commit, like ``devpi_on_upload``: an exception is logged and ends the call.

    :param event: the index, the change and its new configuration.
    :param services: the running server's services (as for ``devpi_on_upload``).

    .. versionadded:: 0.1
    """


@hookspec
def devpi_on_mirror_refresh(event: MirrorRefreshEvent, services: ServiceRegistry) -> None:
    """React to a mirror fetching a project page from its upstream.

    Called after the cache was updated, like ``devpi_on_upload``: an exception is logged and
    ends the call.

    :param event: the mirror index and project that were refreshed.
    :param services: the running server's services (as for ``devpi_on_upload``).

    .. versionadded:: 0.1
    """


# -- policy ---------------------------------------------------------------------------------
@hookspec
def devpi_simple_policies(index: IndexRecord) -> list[SimplePolicy]:
    """Filter what the simple pages of ``index`` show, at response time.

    Called when a page of ``index`` is served. All results are collected and applied in plugin
    order; the rendered page is cached per the policies' ``cache_key``.

    :param index: the index whose page is served (the one in the URL).

    .. versionadded:: 0.1
    """


@hookspec
def devpi_serve_policies() -> list[ServePolicySpec]:
    """Offer policies over what indexes serve: hold versions back from every page, every JSON
    listing and every file URL of an index (a release-age cooldown, allow and deny lists).

    Called once while the web app is built. All results are collected; names must be unique.
    Each spec's ``keys`` become configuration keys of every index type; its factory is called
    with the server's services and returns the :class:`~devpi_core.interfaces.ServePolicy`
    core consults where it assembles an index's answers.

    .. versionadded:: 0.2
    """
