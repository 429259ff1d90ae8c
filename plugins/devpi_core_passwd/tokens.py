"""Login tokens: ``<payload>.<signature>``, HMAC-SHA256 with the server secret.

The payload holds the user name, the issue time and a fingerprint of the user's password hash,
so a token dies when it expires or when the password changes. The server secret lives in the
server directory, so tokens survive restarts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

PURPOSE = b"devpi-core login token v1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key(secret: bytes) -> bytes:
    return hmac.new(secret, PURPOSE, hashlib.sha256).digest()


def fingerprint(secret: bytes, pwhash: str) -> str:
    """A short keyed digest of a password hash (changes when the password does)."""
    return _b64(hmac.new(_key(secret), pwhash.encode(), hashlib.sha256).digest()[:9])


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says."""

    username: str
    issued: int
    pwfingerprint: str


def issue(secret: bytes, username: str, pwhash: str, *, now: float | None = None) -> str:
    """A token for ``username`` whose password hash is ``pwhash``."""
    issued = int(time.time() if now is None else now)
    payload = _b64(json.dumps([username, issued, fingerprint(secret, pwhash)]).encode())
    signature = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def looks_like_token(text: str) -> bool:
    """Whether ``text`` has the shape of a token (passwords rarely do)."""
    payload, dot, signature = text.partition(".")
    return (
        bool(dot) and len(signature) == 43 and payload.replace("-", "").replace("_", "").isalnum()
    )


def verify(
    secret: bytes, token: str, *, max_age: int, now: float | None = None
) -> TokenClaims | None:
    """The claims of a genuine, unexpired token, else None."""
    payload, _dot, signature = token.partition(".")
    expected = _b64(hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        username, issued, pwfp = json.loads(_unb64(payload))
    except (ValueError, TypeError):
        return None
    current = time.time() if now is None else now
    if not isinstance(issued, int) or issued + max_age < current or issued > current + 60:
        return None
    return TokenClaims(str(username), issued, str(pwfp))
