"""Index configuration values: coercion of what clients send, and PATCH operations.

devpi-client sends strings (``volatile=False``, ``bases=a/b,c/d``); the JSON API also takes real
types. Each key's :class:`~devpi_core.specs.IndexKey` ``kind`` says how to read it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from devpi_core.errors import BadRequest
from devpi_core.model.acl import ANONYMOUS, normalize_acl_entry
from devpi_core.model.names import normalize
from devpi_core.specs import IndexKey

# Keys every index type has, whatever plugin provides it.
COMMON_KEYS = (
    IndexKey("title", "str", help="short human-readable title"),
    IndexKey("description", "str", help="longer description"),
    IndexKey("custom_data", "json", help="anything a client wants to keep with the index"),
    IndexKey("acl_read", "acl", default=[ANONYMOUS],
             help="who may read pages, metadata and files (devpi-core extension)"),
)
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def _as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise BadRequest(f"{key}: expected a list or a comma-separated string, got {value!r}")


def coerce(spec: IndexKey, value: Any) -> Any:
    """Turn a client's value for ``spec`` into the stored form, or raise a 400."""
    key, kind = spec.name, spec.kind
    if value is None:
        return None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise BadRequest(f"{key}: expected true or false, got {value!r}")
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise BadRequest(f"{key}: expected an integer, got {value!r}") from None
    if kind in ("str", "url", "choice"):
        if not isinstance(value, str):
            raise BadRequest(f"{key}: expected a string, got {value!r}")
        if kind == "url" and not value.startswith(("http://", "https://", "file://")):
            raise BadRequest(f"{key}: expected an http:// or https:// URL, got {value!r}")
        if kind == "choice" and value not in spec.choices:
            raise BadRequest(f"{key}: expected one of {', '.join(spec.choices)}, got {value!r}")
        return value
    if kind == "list":
        return _as_list(key, value)
    if kind == "acl":
        return list(dict.fromkeys(normalize_acl_entry(v) for v in _as_list(key, value)))
    if kind == "names":
        return list(dict.fromkeys(v if v == "*" else normalize(v) for v in _as_list(key, value)))
    if kind == "bases":
        return list(dict.fromkeys(v.strip("/") for v in _as_list(key, value)))
    return value  # json: stored as given


def apply_operations(
    config: Mapping[str, Any], ops: Sequence[Any], keys: Mapping[str, IndexKey]
) -> dict[str, Any]:
    """Apply devpi's list form of PATCH: ``k=v`` sets, ``k+=v`` appends, ``k-=v`` removes,
    ``k-=`` drops the key (only keys without a default)."""
    result = dict(config)
    for op in ops:
        if not isinstance(op, str):
            raise BadRequest(f"invalid operation {op!r}: expected 'key=value', 'key+=value' or 'key-=value'")
        key, sep, value = _split_op(op)
        spec = keys.get(key)
        if spec is None:
            raise BadRequest(f"indexconfig got unexpected keyword arguments: {key}={value}")
        if sep == "=":
            result[key] = coerce(spec, value)
        elif sep == "+=":
            current = list(result.get(key) or [])
            for item in coerce(spec, value) if spec.kind in _LIST_KINDS else [value]:
                if item not in current:
                    current.append(item)
            result[key] = current
        elif value == "":
            if spec.default not in (None, "", [], ()):
                raise BadRequest(f"cannot remove {key!r}: it has a default")
            result.pop(key, None)
        else:
            current = list(result.get(key) or [])
            items = coerce(spec, value) if spec.kind in _LIST_KINDS else [value]
            for item in items:
                if item not in current:
                    raise BadRequest(f"{key}: {item!r} is not in the list")
                current.remove(item)
            result[key] = current
    return result


_LIST_KINDS = ("list", "acl", "names", "bases")


def _split_op(op: str) -> tuple[str, str, str]:
    for sep in ("+=", "-="):
        key, found, value = op.partition(sep)
        if found and "=" not in key:
            return key.strip(), sep, value.strip()
    key, found, value = op.partition("=")
    if not found or not key.strip():
        raise BadRequest(f"invalid operation {op!r}: expected 'key=value', 'key+=value' or 'key-=value'")
    return key.strip(), "=", value.strip()
