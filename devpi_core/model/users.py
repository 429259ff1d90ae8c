"""Users: stored as ``user:<name>`` records in the metadata store."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from devpi_core.errors import BadRequest, Conflict, Forbidden, NotFound
from devpi_core.model.names import check_name

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from devpi_core.interfaces import MetadataStore, PasswordHasher, WriteTransaction

log = logging.getLogger(__name__)
PUBLIC_KEYS = ("email", "title", "description", "custom_data")
SETTABLE_KEYS = ("password", "pwhash", *PUBLIC_KEYS)


def user_key(name: str) -> str:
    """The metadata key of user ``name``."""
    return f"user:{name}"


def now_iso() -> str:
    """The current UTC time as devpi writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def public_view(name: str, record: Mapping[str, Any], indexes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``userconfig`` answered to clients: never a password hash."""
    view: dict[str, Any] = {"username": name, "indexes": dict(indexes)}
    for key in ("created", "modified", *PUBLIC_KEYS):
        if record.get(key) not in (None, ""):
            view[key] = record[key]
    return view


class Users:
    """Create, change, look up and delete users."""

    def __init__(self, store: MetadataStore, hasher: Callable[[], PasswordHasher]) -> None:
        self.store = store
        self._hasher = hasher

    @property
    def hasher(self) -> PasswordHasher:
        """The configured password hasher."""
        return self._hasher()

    def get(self, name: str) -> dict[str, Any] | None:
        """The stored record of ``name`` (with ``pwhash``), or None."""
        with self.store.read() as tx:
            record = tx.get(user_key(name))
        return dict(record) if record is not None else None

    def require(self, name: str) -> dict[str, Any]:
        """The stored record of ``name``, or a 404."""
        record = self.get(name)
        if record is None:
            raise NotFound(f"no user {name!r}")
        return record

    def names(self) -> list[str]:
        """All user names, sorted."""
        with self.store.read() as tx:
            return [key.split(":", 1)[1] for key in tx.keys("user:")]

    def all(self) -> dict[str, dict[str, Any]]:
        """All user records by name."""
        with self.store.read() as tx:
            return {key.split(":", 1)[1]: dict(value) for key, value in tx.items("user:")}

    def create(self, name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create user ``name`` from ``password`` (or ``pwhash``) and public fields."""
        check_name("user", name)
        unknown = sorted(set(fields) - set(SETTABLE_KEYS))
        if unknown:
            raise BadRequest(f"Unknown keys in user config: {', '.join(unknown)}")
        if "password" not in fields and "pwhash" not in fields:
            raise BadRequest("password needs to be set")
        _warn_if_empty(name, fields)
        record = self._apply({"created": now_iso()}, fields)
        with self.store.write() as tx:
            if tx.get(user_key(name)) is not None:
                raise Conflict(f"user already exists: {name}")
            tx.set(user_key(name), record)
        return record

    def modify(self, name: str, fields: Mapping[str, Any]) -> bool:
        """Change the allowed keys of ``name``; return whether the password changed.

        Keys devpi ignores on PATCH (``indexes``, ``username``, ...) are ignored here too.
        """
        changes = {key: value for key, value in fields.items() if key in SETTABLE_KEYS}
        # as devpi: ``"password": null`` leaves the password alone
        password_changed = changes.get("password") is not None or "pwhash" in changes
        if "pwhash" in changes and changes.get("password") is None and not changes["pwhash"]:
            raise BadRequest("pwhash must not be empty")
        _warn_if_empty(name, changes)
        new_hash = self._apply({}, changes)
        with self.store.write() as tx:
            record = self._locked(tx, name)
            record.update(new_hash)
            for key in PUBLIC_KEYS:
                if key in changes and changes[key] in (None, "", [], {}, False):
                    record.pop(key, None)
            record["modified"] = now_iso()
            tx.set(user_key(name), record)
        return password_changed

    def set_password(self, name: str, password: str) -> None:
        """Set ``name``'s password (``devpi-core passwd``)."""
        self.modify(name, {"password": password})

    def rehash(self, name: str, old_hash: str, password: str) -> None:
        """Replace an outdated hash after a successful check (if nobody changed it meanwhile)."""
        with self.store.write() as tx:
            record = tx.get(user_key(name))
            if record is not None and record.get("pwhash") == old_hash:
                tx.set(user_key(name), {**record, "pwhash": self.hasher.hash(password)})

    def delete(self, name: str, delete_indexes: Callable[[WriteTransaction, str], None]) -> None:
        """Delete ``name``; ``delete_indexes`` removes their indexes in the same transaction."""
        if name == "root":
            raise Forbidden("user root cannot be deleted")
        with self.store.write() as tx:
            self._locked(tx, name)
            delete_indexes(tx, name)
            tx.delete(user_key(name))

    def _locked(self, tx: WriteTransaction, name: str) -> dict[str, Any]:
        record = tx.get(user_key(name))
        if record is None:
            raise NotFound(f"no user {name!r}")
        return dict(record)

    def _apply(self, record: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
        for key in PUBLIC_KEYS:
            if fields.get(key) not in (None, "", [], {}):
                record[key] = fields[key]
        if fields.get("password") not in (None, ""):
            if not isinstance(fields["password"], str):
                raise BadRequest("password must be a string")
            record["pwhash"] = self.hasher.hash(fields["password"])
        elif fields.get("pwhash"):
            if not isinstance(fields["pwhash"], str) or not fields["pwhash"].startswith("$"):
                raise BadRequest("pwhash must be a hash string such as $argon2id$...")
            record["pwhash"] = fields["pwhash"]
        elif "password" in fields and fields["password"] == "":
            # devpi accepts an empty password (root has one after init, and tooling resets
            # it to empty); anyone may then log in as this user with ""
            record["pwhash"] = self.hasher.hash("")
        return record


def _warn_if_empty(name: str, fields: Mapping[str, Any]) -> None:
    if fields.get("password") == "":
        log.warning("user %r gets an empty password: anyone can log in as them", name)
