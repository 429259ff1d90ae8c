"""The Pyramid security policy: credentials and identities come from plugins.

Permissions are checked explicitly in views (``devpi_core.web.require_*``) against devpi's model
in ``devpi_core.model.acl``; Pyramid only supplies ``request.identity``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from devpi_core import services
from devpi_core.records import Identity

if TYPE_CHECKING:
    from pyramid.request import Request


IDENTITY_KEY = "devpi_core.identity"
_UNSET = object()


class DevpiSecurityPolicy:
    """Asks ``devpi_get_credentials`` and ``devpi_authenticate``; adds plugin groups.

    The identity is computed once per request and kept in the WSGI environ (Pyramid's
    ``request.identity`` would otherwise ask the policy on every access).
    """

    def identity(self, request: Request) -> Identity | None:
        """The request's identity, or None (bad or expired credentials are anonymous)."""
        found = request.environ.get(IDENTITY_KEY, _UNSET)
        if found is _UNSET:
            found = request.environ[IDENTITY_KEY] = self._compute(request)
        return cast("Identity | None", found)

    def _compute(self, request: Request) -> Identity | None:
        plugins = services.plugins(request)
        credentials = plugins.get_credentials(request)
        if credentials is None:
            return None
        found = plugins.authenticate(request, credentials)
        if found is None:
            return None
        groups = plugins.identity_groups(request, found)
        return found if groups == found.groups else Identity(found.username, groups)

    def authenticated_userid(self, request: Request) -> str | None:
        """The user name, if authenticated."""
        found = request.identity
        return found.username if found is not None else None

    def permits(self, request: Request, context: Any, permission: str) -> bool:
        """Views check devpi permissions themselves; Pyramid's view permissions are unused."""
        return True

    def remember(self, request: Request, userid: str, **kw: Any) -> list[tuple[str, str]]:
        """Stateless: clients resend credentials."""
        return []

    def forget(self, request: Request, **kw: Any) -> list[tuple[str, str]]:
        """Stateless: nothing to forget."""
        return []
