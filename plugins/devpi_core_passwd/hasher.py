"""argon2id password hashes through passlib (the maintained ``libpass`` distribution)."""

from __future__ import annotations

from passlib.context import CryptContext

from devpi_core.interfaces import PasswordHasher


class Argon2Hasher(PasswordHasher):
    """``$argon2id$...`` hashes; parameters from ``plugins.passwd``."""

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        self.context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__rounds=time_cost,
            argon2__memory_cost=memory_cost,
            argon2__parallelism=parallelism,
        )

    def hash(self, password: str) -> str:
        return str(self.context.hash(password))

    def verify(self, password: str, pwhash: str) -> bool:
        try:
            return bool(self.context.verify(password, pwhash))
        except (ValueError, TypeError):
            return False  # not an argon2 hash we can read

    def needs_update(self, pwhash: str) -> bool:
        try:
            return bool(self.context.needs_update(pwhash))
        except (ValueError, TypeError):
            return False
