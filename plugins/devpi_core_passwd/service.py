"""The plugin's service: checks passwords and tokens against local users."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from devpi_core import services
from devpi_core.records import Credentials, Identity, LoginToken
from devpi_core_passwd import tokens
from devpi_core_passwd.cache import CredentialCache

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request

log = logging.getLogger(__name__)


class LocalAuth:
    """Password and login-token authentication of the users in the metadata store."""

    def __init__(self, secret: bytes, *, token_expiry: int, cache_seconds: int) -> None:
        self.secret = secret
        self.token_expiry = token_expiry
        self.cache = CredentialCache(cache_seconds)

    def authenticate(self, request: Request, credentials: Credentials) -> Identity | None:
        """The identity for a valid token or password of an existing user."""
        users = services.users(request)
        record = users.get(credentials.username)
        if record is None or not record.get("pwhash"):
            return None
        pwhash = str(record["pwhash"])
        if tokens.looks_like_token(credentials.secret):
            claims = tokens.verify(self.secret, credentials.secret, max_age=self.token_expiry)
            if (
                claims is not None
                and claims.username == credentials.username
                and claims.pwfingerprint == tokens.fingerprint(self.secret, pwhash)
            ):
                return Identity(credentials.username)
        if self.cache.verified(credentials.username, credentials.secret, pwhash):
            return Identity(credentials.username)
        hasher = users.hasher
        if not hasher.verify(credentials.secret, pwhash):
            return None
        self.cache.remember(credentials.username, credentials.secret, pwhash)
        if hasher.needs_update(pwhash):
            users.rehash(credentials.username, pwhash, credentials.secret)
        return Identity(credentials.username)

    def issue(self, request: Request, identity: Identity) -> LoginToken | None:
        """A login token for a local user."""
        record = services.users(request).get(identity.username)
        if record is None:
            return None
        token = tokens.issue(self.secret, identity.username, str(record.get("pwhash", "")))
        return LoginToken(token, self.token_expiry)


def local_auth(request: Request) -> LocalAuth:
    """The plugin's service."""
    return services.lookup(request.registry, LocalAuth)


def includeme(config: Configurator) -> None:
    """Register :class:`LocalAuth` with the server secret and ``plugins.passwd`` settings."""
    section = services.settings(config.registry).plugin("passwd")
    auth = LocalAuth(
        services.serverdir(config.registry).secret,
        token_expiry=int(section["login_token_expiry"]),
        cache_seconds=int(section["credential_cache_seconds"]),
    )
    services.register(config.registry, LocalAuth, auth)
