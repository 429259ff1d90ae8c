"""Password hashes devpi-server wrote before argon2, kept by ``devpi-core import``.

devpi-server up to 5.x stored ``pwsalt`` and ``pwhash = sha256(salt + password)`` in hex.
devpi-core keeps such a user's hash as ``$devpi-sha256$<salt>$<hex>`` so the password hasher
can verify it once and replace it with its own scheme at that login (``needs_update``).
Argon2 hashes from devpi-server 6 are stored unchanged: passlib reads them.
"""

from __future__ import annotations

import hashlib
import hmac

LEGACY_PREFIX = "$devpi-sha256$"


def legacy_pwhash(salt: str, hexdigest: str) -> str:
    """The stored form of devpi-server's salted sha256 hash."""
    return f"{LEGACY_PREFIX}{salt}${hexdigest}"


def split_legacy(pwhash: str) -> tuple[str, str] | None:
    """``(salt, hexdigest)`` of a legacy hash, or None for any other hash."""
    if not pwhash.startswith(LEGACY_PREFIX):
        return None
    salt, sep, hexdigest = pwhash[len(LEGACY_PREFIX):].rpartition("$")
    return (salt, hexdigest) if sep else None


def verify_legacy(password: str, pwhash: str) -> bool:
    """Whether ``password`` matches a legacy hash (False for any other hash)."""
    parts = split_legacy(pwhash)
    if parts is None:
        return False
    salt, expected = parts
    digest = hashlib.sha256(salt.encode("utf-8") + password.encode("utf-8")).hexdigest()
    return hmac.compare_digest(digest, expected)
