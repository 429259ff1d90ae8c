"""Index configuration values: coercion of what clients send, and PATCH operations.

devpi-client sends strings (``volatile=False``, ``bases=a/b,c/d``); the JSON API also takes real
types. Each key's :class:`~devpi_core.specs.IndexKey` ``kind`` says how to read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core.errors import BadRequest
from devpi_core.model.acl import ANONYMOUS, normalize_acl_entry
from devpi_core.model.names import normalize
from devpi_core.specs import IndexKey

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

# Keys every index type has, whatever plugin provides it.
COMMON_KEYS = (
    IndexKey("title", "str", help="short human-readable title"),
    IndexKey("description", "str", help="longer description"),
    IndexKey("custom_data", "json", help="anything a client wants to keep with the index"),
    IndexKey(
        "acl_read", "acl", default=[ANONYMOUS],
        help="who may read pages, metadata and files (devpi-core extension)",
    ),
)
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off", ""}


def _as_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise BadRequest(f"{key}: expected a list or a comma-separated string, got {value!r}")


def _bool(spec: IndexKey, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise BadRequest(f"{spec.name}: expected true or false, got {value!r}")


def _int(spec: IndexKey, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"{spec.name}: expected an integer, got {value!r}") from None


def _str(spec: IndexKey, value: Any) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{spec.name}: expected a string, got {value!r}")
    if spec.kind == "url" and not value.startswith(("http://", "https://", "file://")):
        raise BadRequest(f"{spec.name}: expected an http:// or https:// URL, got {value!r}")
    if spec.kind == "choice" and value not in spec.choices:
        raise BadRequest(f"{spec.name}: expected one of {', '.join(spec.choices)}, got {value!r}")
    return value


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


_COERCIONS: dict[str, Callable[[IndexKey, Any], Any]] = {
    "bool": _bool,
    "int": _int,
    "str": _str,
    "url": _str,
    "choice": _str,
    "list": lambda spec, value: _as_list(spec.name, value),
    "acl": lambda spec, value: _unique(normalize_acl_entry(v) for v in _as_list(spec.name, value)),
    "names": lambda spec, value: _unique(
        v if v == "*" else normalize(v) for v in _as_list(spec.name, value)
    ),
    "bases": lambda spec, value: _unique(v.strip("/") for v in _as_list(spec.name, value)),
}


def coerce(spec: IndexKey, value: Any) -> Any:
    """Turn a client's value for ``spec`` into the stored form, or raise a 400."""
    if value is None:
        return None
    convert = _COERCIONS.get(spec.kind)
    value = value if convert is None else convert(spec, value)  # json: stored as given
    return value if spec.check is None else _checked(spec, value)


def _checked(spec: IndexKey, value: Any) -> Any:
    assert spec.check is not None
    try:
        if spec.kind in _LIST_KINDS:
            return _unique(spec.check(item) for item in value)
        return spec.check(value)
    except ValueError as exc:
        raise BadRequest(f"{spec.name}: {exc}") from None


_BAD_OP = "expected 'key=value', 'key+=value' or 'key-=value'"


def apply_operations(
    config: Mapping[str, Any], ops: Sequence[Any], keys: Mapping[str, IndexKey]
) -> dict[str, Any]:
    """Apply devpi's list form of PATCH: ``k=v`` sets, ``k+=v`` appends, ``k-=v`` removes,
    ``k-=`` drops the key (only keys without a default)."""
    result = dict(config)
    for op in ops:
        if not isinstance(op, str):
            raise BadRequest(f"invalid operation {op!r}: {_BAD_OP}")
        key, sep, value = _split_op(op)
        spec = keys.get(key)
        if spec is None:
            raise BadRequest(f"indexconfig got unexpected keyword arguments: {key}={value}")
        if sep == "=":
            result[key] = coerce(spec, value)
        elif sep == "-=" and value == "":
            if spec.default not in (None, "", [], ()):
                raise BadRequest(f"cannot remove {key!r}: it has a default")
            result.pop(key, None)
        else:
            result[key] = _change_list(spec, list(result.get(key) or []), sep, value)
    return result


def _change_list(spec: IndexKey, current: list[Any], sep: str, value: str) -> list[Any]:
    if spec.kind not in _LIST_KINDS:
        raise BadRequest(f"{spec.name} is not a list: use {spec.name}=value")
    for item in coerce(spec, value):
        if sep == "+=":
            if item not in current:
                current.append(item)
        elif item in current:
            current.remove(item)
        else:
            raise BadRequest(f"{spec.name}: {item!r} is not in the list")
    return current


_LIST_KINDS = ("list", "acl", "names", "bases")


def _split_op(op: str) -> tuple[str, str, str]:
    for sep in ("+=", "-="):
        key, found, value = op.partition(sep)
        if found and "=" not in key:
            return key.strip(), sep, value.strip()
    key, found, value = op.partition("=")
    if not found or not key.strip():
        raise BadRequest(f"invalid operation {op!r}: {_BAD_OP}")
    return key.strip(), "=", value.strip()
