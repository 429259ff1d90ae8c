"""Who may do what: devpi's permission model, plus a read ACL per index.

Principals of a request: ``:ANONYMOUS:`` always; when identified also ``:AUTHENTICATED:``, the
user name and ``:<group>`` for each group. ACL lists in index configurations use the same
spelling (``:anonymous:`` is accepted and stored upper-case).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from devpi_core.records import Identity, IndexRecord

ANONYMOUS = ":ANONYMOUS:"
AUTHENTICATED = ":AUTHENTICATED:"
_SPECIAL = {":anonymous:": ANONYMOUS, ":authenticated:": AUTHENTICATED}


def normalize_acl_entry(entry: str) -> str:
    """``:anonymous:`` -> ``:ANONYMOUS:``; other entries unchanged."""
    return _SPECIAL.get(entry.lower(), entry)


def principals(identity: Identity | None) -> frozenset[str]:
    """The principals a request acts as."""
    if identity is None:
        return frozenset({ANONYMOUS})
    groups = {f":{group}" for group in identity.groups}
    return frozenset({ANONYMOUS, AUTHENTICATED, identity.username, *groups})


def _admins(restrict_modify: Sequence[str] | None) -> set[str]:
    return {"root"} if restrict_modify is None else set(restrict_modify)


def user_allowed(
    permission: str,
    identity: Identity | None,
    target_user: str | None,
    restrict_modify: Sequence[str] | None,
) -> bool:
    """Whether ``identity`` has a user-level ``permission`` on ``target_user``."""
    mine = principals(identity)
    admins = _admins(restrict_modify)
    is_admin = bool(mine & admins)
    is_self = identity is not None and identity.username == target_user
    if permission == "user_create":
        return restrict_modify is None or is_admin
    if permission == "user_modify_password" and is_self:
        return True
    if permission in ("user_modify", "user_modify_password", "index_create"):
        return is_admin or (restrict_modify is None and is_self)
    if permission == "user_delete":
        if target_user == "root":
            return False
        if restrict_modify is None:
            return is_admin or is_self
        return is_admin and not is_self
    raise ValueError(f"unknown user permission {permission!r}")


def index_allowed(
    permission: str,
    identity: Identity | None,
    index: IndexRecord,
    restrict_modify: Sequence[str] | None,
    *,
    granted: Callable[[str, frozenset[str]], bool] | None = None,
) -> bool:
    """Whether ``identity`` has ``permission`` on ``index``.

    ``granted(permission, principals)`` is the index type's answer for ``upload``,
    ``toxresult_upload`` and ``del_entry`` (:meth:`~devpi_core.indextypes.IndexType.allows`);
    without it nobody but the owner and the admins (for ``del_entry``) has those.
    """
    mine = principals(identity)
    owner_and_admins = _owners(index, restrict_modify)
    config = index.config
    if permission == "pkg_read":
        return (
            is_public(index) or _matches(mine, config["acl_read"]) or bool(mine & owner_and_admins)
        )
    if permission in ("upload", "toxresult_upload"):
        return granted is not None and granted(permission, mine)
    if permission in ("index_modify", "index_delete"):
        return bool(mine & owner_and_admins)
    if permission == "del_entry":
        return bool(mine & owner_and_admins) or (granted is not None and granted(permission, mine))
    raise ValueError(f"unknown index permission {permission!r}")


def is_public(index: IndexRecord) -> bool:
    """Whether anyone may read ``index`` (the default): no identity is needed to serve it."""
    return ANONYMOUS in index.config.get("acl_read", (ANONYMOUS,))


def _owners(index: IndexRecord, restrict_modify: Sequence[str] | None) -> set[str]:
    if restrict_modify is None:
        return {index.user, "root"}
    return set(restrict_modify)


def _matches(mine: frozenset[str], acl: Iterable[str]) -> bool:
    return any(normalize_acl_entry(entry) in mine for entry in acl)


def deny(identity: Identity | None, message: str) -> Exception:
    """401 for anonymous requests (so pip and twine retry with credentials), else 403."""
    if identity is None:
        return Unauthorized(message)
    return Forbidden(message)
