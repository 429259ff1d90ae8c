"""Indexes: ``index:<user>/<name>`` records and their types (which answer for their rules)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from devpi_core.errors import BadRequest, Conflict, Forbidden, NotFound
from devpi_core.model.ixconfig import COMMON_KEYS, apply_operations, coerce
from devpi_core.model.names import check_name
from devpi_core.model.users import user_key
from devpi_core.outbound import OutboundPolicy
from devpi_core.records import IndexRecord
from devpi_core.specs import IndexKey, IndexTypeSpec

if TYPE_CHECKING:
    from devpi_core.indextypes import IndexEnv, IndexType
    from devpi_core.interfaces import ReadTransaction, WriteTransaction

_TYPE_KEY = IndexKey("type", "str", default="stage")


def index_key(fullname: str) -> str:
    """The metadata key of index ``user/name``."""
    return f"index:{fullname}"


def split_fullname(spec: str) -> tuple[str, str]:
    """``"user/index"`` (slashes around it allowed) -> ``("user", "index")``, or a 400."""
    parts = spec.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise BadRequest(f"invalid base index spec {spec!r}: expected user/index")
    return parts[0], parts[1]


class Indexes:
    """Create, change, look up, resolve and delete indexes."""

    def __init__(
        self,
        env: IndexEnv,
        types: Mapping[str, IndexTypeSpec],
        outbound: OutboundPolicy | None = None,
        extra_keys: Sequence[IndexKey] = (),
    ) -> None:
        self.env = env
        self.store = env.store
        self.types = dict(types)
        # keys of every type besides the common ones: those of serve policies
        self.extra_keys = tuple(extra_keys)
        self.outbound = outbound or OutboundPolicy()
        self._instances: dict[str, IndexType] = {}
        self._lock = threading.Lock()

    # -- lookup ----------------------------------------------------------------------------
    def get(self, fullname: str, tx: ReadTransaction | None = None) -> IndexRecord | None:
        """The index ``user/name``, or None."""
        if tx is None:
            with self.store.read() as rtx:
                return self.get(fullname, rtx)
        config = tx.get(index_key(fullname))
        if config is None:
            return None
        user, name = fullname.split("/", 1)
        return IndexRecord(user, name, config, tx.key_serial(index_key(fullname)) or 0)

    def require(self, fullname: str) -> IndexRecord:
        """The index ``user/name``, or a 404."""
        record = self.get(fullname)
        if record is None:
            raise NotFound(f"no index {fullname!r}")
        return record

    def of_user(self, user: str, tx: ReadTransaction | None = None) -> dict[str, dict[str, Any]]:
        """``{index name: config}`` of ``user``."""
        if tx is None:
            with self.store.read() as rtx:
                return self.of_user(user, rtx)
        prefix = index_key(f"{user}/")
        return {key[len(prefix):]: dict(value) for key, value in tx.items(prefix)}

    def spec(self, record: IndexRecord) -> IndexTypeSpec | None:
        """The type spec of ``record`` (None when its plugin is not active)."""
        return self.types.get(record.type)

    def is_mirror(self, record: IndexRecord) -> bool:
        """Whether ``record`` is of a mirror type."""
        spec = self.spec(record)
        return spec is not None and spec.is_mirror

    def type_of(self, record: IndexRecord) -> IndexType:
        """The object serving ``record``; cached until its configuration changes."""
        spec = self.spec(record)
        if spec is None:
            raise NotFound(f"index {record.fullname} has type {record.type!r}, "
                           "whose plugin is not enabled")
        cached = self._instances.get(record.fullname)
        if cached is not None and cached.record.serial == record.serial:
            return cached
        with self._lock:
            instance = spec.factory(self.env, record)
            self._instances[record.fullname] = instance
        return instance

    def keys_for(self, type_name: str) -> dict[str, IndexKey]:
        """Every configuration key of ``type_name``, including the common ones."""
        spec = self.types.get(type_name)
        if spec is None:
            raise BadRequest(f"unknown index type {type_name!r}; "
                             f"available: {', '.join(sorted(self.types))}")
        return {k.name: k for k in (*COMMON_KEYS, *self.extra_keys, *spec.keys)}

    # -- changes ---------------------------------------------------------------------------
    def create(self, user: str, name: str, given: Mapping[str, Any]) -> IndexRecord:
        """Create ``user/name`` from the client's configuration (devpi's check order:
        exists 409, unknown user 404, invalid 400)."""
        check_name("index", name)
        fullname = f"{user}/{name}"
        type_name = given.get("type") or _TYPE_KEY.default
        if not isinstance(type_name, str):
            raise BadRequest(f"type: expected a string, got {type_name!r}")
        keys = self.keys_for(type_name)
        config: dict[str, Any] = {"type": type_name}
        for spec in keys.values():
            if spec.default is not None:
                default = spec.default
                config[spec.name] = list(default) if isinstance(default, (list, tuple)) else default
        computed = self.types[type_name].defaults
        if computed is not None:
            config.update(computed(self.env, user))
        config.update(self._coerce(keys, {k: v for k, v in given.items() if k != "type"}))
        with self.store.write() as tx:
            if tx.get(index_key(fullname)) is not None:
                raise Conflict(f"index {fullname} exists")
            if tx.get(user_key(user)) is None:
                raise NotFound(f"no user {user!r}")
            self._validate(tx, fullname, config)
            tx.set(index_key(fullname), config)
        return self.require(fullname)

    def modify(self, fullname: str, change: Mapping[str, Any] | Sequence[Any]) -> IndexRecord:
        """Apply a PATCH (a dict of keys, or devpi's list of ``key=value`` operations)."""
        with self.store.write() as tx:
            old = tx.get(index_key(fullname))
            if old is None:
                raise NotFound(f"no index {fullname!r}")
            keys = self.keys_for(old["type"])
            if isinstance(change, Mapping):
                if change.get("type", old["type"]) != old["type"]:
                    raise BadRequest("the index type cannot be changed")
                given = {k: v for k, v in change.items() if k not in ("type", "projects")}
                new = {**old, **self._coerce(keys, given)}
            else:
                new = apply_operations(old, change, keys)
                if new.get("type") != old["type"]:
                    raise BadRequest("the index type cannot be changed")
            new = {k: v for k, v in new.items() if v is not None}
            self._validate(tx, fullname, new)
            tx.set(index_key(fullname), new)
        return self.require(fullname)

    def delete(self, fullname: str) -> None:
        """Delete an index and its data; refused (403) when its type says it may not be."""
        record = self.require(fullname)
        if not self._may_delete(record):
            raise Forbidden(f"index {fullname} non-volatile, cannot delete")
        with self.store.write() as tx:
            self._delete_in(tx, record)

    def _delete_in(self, tx: WriteTransaction, record: IndexRecord) -> None:
        if self.spec(record) is not None:
            self.type_of(record).delete_all(tx)
        tx.delete(index_key(record.fullname))
        tx.after_commit(lambda _serial: self._forget(record.fullname))

    def _may_delete(self, record: IndexRecord) -> bool:
        # an index whose plugin is not enabled has nobody to ask: it may go
        return self.spec(record) is None or self.type_of(record).may_delete()

    def _forget(self, fullname: str) -> None:
        self._instances.pop(fullname, None)

    def delete_user_indexes(self, tx: WriteTransaction, user: str) -> None:
        """Within a user deletion: refuse if any index may not be deleted, else drop them all."""
        records = [self.get(f"{user}/{name}", tx) for name in self.of_user(user, tx)]
        found = [record for record in records if record is not None]
        pinned = sorted(record.name for record in found if not self._may_delete(record))
        if pinned:
            raise Forbidden(f"user {user} has non-volatile indexes: {', '.join(pinned)}")
        for record in found:
            self._delete_in(tx, record)

    def _coerce(self, keys: Mapping[str, IndexKey], given: Mapping[str, Any]) -> dict[str, Any]:
        unknown = {k: v for k, v in given.items() if k not in keys}
        if unknown:
            listed = ", ".join(f"{k}={v}" for k, v in unknown.items())
            raise BadRequest(f"indexconfig got unexpected keyword arguments: {listed}")
        return {key: coerce(keys[key], value) for key, value in given.items()}

    def _validate(self, tx: ReadTransaction, fullname: str, config: Mapping[str, Any]) -> None:
        spec = self.types[config["type"]]
        # a key of kind ``bases`` names indexes, which must exist (whatever the type does with them)
        for key in spec.keys:
            for base in config.get(key.name, ()) if key.kind == "bases" else ():
                split_fullname(base)
                if tx.get(index_key(base)) is None:
                    raise BadRequest(f"base index {base!r} does not exist")
        problems = spec.validate(config) if spec.validate is not None else []
        for key in spec.keys:
            value = config.get(key.name)
            if key.outbound and isinstance(value, str):
                problem = self.outbound.literal_problem(value)
                if problem is not None:
                    problems.append(f"{key.name}: {problem}")
        if problems:
            raise BadRequest(f"invalid configuration for {fullname}: {'; '.join(problems)}")

    # -- resolution ------------------------------------------------------------------------
    def resolution_order(
        self, record: IndexRecord, can_read: Callable[[IndexRecord], bool] | None = None
    ) -> list[IndexRecord]:
        """The indexes whose pages make up ``record``'s, ``record`` first, as its type answers
        (:meth:`~devpi_core.indextypes.IndexType.resolution_order`)."""
        return list(self.type_of(record).resolution_order(can_read))
