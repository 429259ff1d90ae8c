"""The plugin's service: checks passwords and tokens against local users.

Order of a check: a valid login token (cheap, signed) wins at once, except at ``/+login``,
which takes passwords only, so a stolen token cannot be renewed into a fresh one. Then the
failed-login limits (:mod:`devpi_core_passwd.throttle`), then the password: from the
credential cache, or one argon2 check. An unknown user costs the same argon2 check against a
fixed hash, so the time of the answer does not tell whether the user exists.
"""

from __future__ import annotations

import logging
import secrets
import threading
from typing import TYPE_CHECKING

from devpi_core import services
from devpi_core.records import Credentials, Identity, LoginToken
from devpi_core.web import client_address
from devpi_core_passwd import tokens
from devpi_core_passwd.cache import CredentialCache
from devpi_core_passwd.settings import SECTION, PasswdSettings
from devpi_core_passwd.throttle import FailureBuckets, LoginThrottle

if TYPE_CHECKING:
    from pyramid.config import Configurator
    from pyramid.request import Request

    from devpi_core.interfaces import PasswordHasher

log = logging.getLogger(__name__)
# Credentials.source of POST /+login (devpi_core.views.api.login)
LOGIN = "login"


class LocalAuth:
    """Password and login-token authentication of the users in the metadata store."""

    def __init__(
        self,
        secret: bytes,
        *,
        token_expiry: int,
        cache_seconds: int,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.secret = secret
        self.token_expiry = token_expiry
        self.cache = CredentialCache(cache_seconds)
        self.throttle = throttle or LoginThrottle(
            per_client=FailureBuckets(0, 1), per_user=FailureBuckets(0, 1)
        )
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    def authenticate(self, request: Request, credentials: Credentials) -> Identity | None:
        """The identity for a valid token or password of an existing user."""
        users = services.users(request)
        record = users.get(credentials.username)
        pwhash = str(record["pwhash"]) if record and record.get("pwhash") else None
        if credentials.source != LOGIN and tokens.looks_like_token(credentials.secret):
            claims = self._claims(credentials)
            if claims is not None:
                # our own token: valid while the password stays; for a user deleted since
                # (devpi-client keeps sending it after ``devpi user --delete`` of oneself) or
                # a changed password it is anonymous, as devpi-server treats it, and no failed
                # login, since nothing was guessed
                if pwhash and claims.pwfingerprint == tokens.fingerprint(self.secret, pwhash):
                    return Identity(credentials.username)
                return None
        client = client_address(request)
        self.throttle.check(client, credentials.username)
        hasher = users.hasher
        if pwhash is None:
            hasher.verify(credentials.secret, self.dummy_hash(hasher))  # the same time as a user
            self.throttle.failed(client, credentials.username)
            return None
        secret = credentials.secret
        if not self.cache.verify(
            credentials.username, secret, pwhash, lambda: hasher.verify(secret, pwhash)
        ):
            self.throttle.failed(client, credentials.username)
            return None
        if hasher.needs_update(pwhash):
            users.rehash(credentials.username, pwhash, secret)
        return Identity(credentials.username)

    def _claims(self, credentials: Credentials) -> tokens.TokenClaims | None:
        """The claims of a valid, unexpired token issued to ``credentials.username``."""
        claims = tokens.verify(self.secret, credentials.secret, max_age=self.token_expiry)
        if claims is None or claims.username != credentials.username:
            return None
        return claims

    def dummy_hash(self, hasher: PasswordHasher) -> str:
        """A hash of a random password with the current parameters, made once."""
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = hasher.hash(secrets.token_urlsafe(16))
            return self._dummy_hash

    def issue(self, request: Request, identity: Identity) -> LoginToken | None:
        """A login token for a local user."""
        record = services.users(request).get(identity.username)
        if record is None:
            return None
        token = tokens.issue(self.secret, identity.username, str(record.get("pwhash", "")))
        return LoginToken(token, self.token_expiry)


def login_throttle(section: PasswdSettings) -> LoginThrottle:
    """The failed-login limits of ``plugins.passwd``."""
    window = section.login_failure_window
    return LoginThrottle(
        per_client=FailureBuckets(section.login_failures_per_client, window),
        per_user=FailureBuckets(section.login_failures_per_user, window),
    )


def local_auth(request: Request) -> LocalAuth:
    """The plugin's service."""
    return services.lookup(request.registry, LocalAuth)


def includeme(config: Configurator) -> None:
    """Register :class:`LocalAuth` with the server secret and ``plugins.passwd`` settings."""
    section = services.settings(config.registry).section(SECTION, PasswdSettings)
    auth = LocalAuth(
        services.serverdir(config.registry).secret,
        token_expiry=section.login_token_expiry,
        cache_seconds=section.credential_cache_seconds,
        throttle=login_throttle(section),
    )
    services.register(config.registry, LocalAuth, auth)
