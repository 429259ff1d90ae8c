"""Local users: argon2 password hashes, HTTP Basic and X-Devpi-Auth, signed login tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

from devpi_core import hookimpl
from devpi_core_passwd import credentials
from devpi_core_passwd.hasher import Argon2Hasher, HashGate, default_slots
from devpi_core_passwd.service import local_auth
from devpi_core_passwd.settings import CONFIG_SECTION, SECTION, PasswdSettings

if TYPE_CHECKING:
    from pyramid.request import Request

    from devpi_core.config import Settings
    from devpi_core.interfaces import PasswordHasher
    from devpi_core.records import Credentials, Identity, LoginToken
    from devpi_core.specs import ConfigSection


@hookimpl
def devpi_config_sections() -> list[ConfigSection]:
    """The ``plugins.passwd`` section."""
    return [CONFIG_SECTION]


@hookimpl
def devpi_pyramid_includes() -> list[str]:
    """Registers the authentication service."""
    return ["devpi_core_passwd.service"]


@hookimpl
def devpi_password_hasher(settings: Settings) -> PasswordHasher:
    """argon2id with the configured cost, at most ``max_concurrent_hashes`` at once."""
    section = settings.section(SECTION, PasswdSettings)
    parallelism = section.argon2_parallelism
    slots = section.max_concurrent_hashes or default_slots(parallelism)
    return Argon2Hasher(
        time_cost=section.argon2_time_cost,
        memory_cost=section.argon2_memory_cost,
        parallelism=parallelism,
        gate=HashGate(slots, section.hash_queue),
    )


@hookimpl
def devpi_get_credentials(request: Request) -> Credentials | None:
    """``X-Devpi-Auth`` or HTTP Basic."""
    return credentials.from_request(request)


@hookimpl
def devpi_authenticate(request: Request, credentials: Credentials) -> Identity | None:
    """A login token or the password of a local user."""
    return local_auth(request).authenticate(request, credentials)


@hookimpl
def devpi_issue_login_token(request: Request, identity: Identity) -> LoginToken | None:
    """A signed token that expires after ``plugins.passwd.login_token_expiry`` seconds."""
    return local_auth(request).issue(request, identity)
