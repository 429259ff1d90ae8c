"""One declaration per setting: the typed field, its JSON Schema, default, help and conversion.

A configuration section is a frozen dataclass whose fields are declared with :func:`setting`
(or :func:`size_setting`). Everything else is derived from that one declaration, as
:class:`~devpi_core.specs.IndexKey` does for index keys: the JSON Schema the file is validated
against (and so its ``file:line: key: message`` errors), the defaults, the commented file
``devpi-core gen-config`` writes, ``docs/configuration.rst`` and the typed object code reads
(:func:`build`). Plugins reach these names through :mod:`devpi_core.specs`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

T = TypeVar("T")

METADATA_KEY = "devpi_core.setting"

SIZE_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)[iI]?[bB]?\s*$"
_SIZE_RE = re.compile(SIZE_PATTERN)
# One shared object: validation recognises it (by identity) to word its error message.
SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": SIZE_PATTERN}],
    "description": "bytes, or a number with K, M, G or T",
}


def parse_size(value: int | str) -> int:
    """Turn ``1048576``, ``"64M"`` or ``"1.5G"`` into a number of bytes."""
    if isinstance(value, int):
        return value
    match = _SIZE_RE.match(value)
    if not match:
        raise ValueError(f"not a size: {value!r}")
    number, unit = match.groups()
    return int(float(number) * 1024 ** " kmgt".index(unit.lower() or " "))


@dataclass(frozen=True)
class Setting:
    """One key of a configuration section.

    ``schema`` is the key's JSON-Schema fragment (validated with the whole file, so every error
    is reported at once with its line); ``default`` is the value as it would be written in the
    YAML file (``"1G"``, a list) and is what the docs show; ``help`` documents the key;
    ``convert`` turns a validated YAML value into the typed field's value (``parse_size``,
    ``tuple``...); None keeps the value as loaded.
    """

    schema: Mapping[str, Any]
    default: Any
    help: str
    convert: Callable[[Any], Any] | None = None

    def typed(self, value: Any) -> Any:
        """The field's value for the validated YAML ``value``."""
        return value if self.convert is None else self.convert(value)

    def typed_default(self) -> Any:
        """The field's value when the file leaves the key out."""
        return self.typed(copy.deepcopy(self.default))


def setting(
    default: Any,
    help: str,
    schema: Mapping[str, Any],
    *,
    convert: Callable[[Any], Any] | None = None,
) -> Any:
    """Declare a field of a settings dataclass: ``port: int = setting(3141, "...", {...})``.

    Returns a :func:`dataclasses.field` whose default is the converted ``default``, so the
    dataclass can also be built directly (in tests) with only the values that matter.
    """
    declaration = Setting(schema, default, help, convert)
    return field(default_factory=declaration.typed_default, metadata={METADATA_KEY: declaration})


def size_setting(default: int | str, help: str) -> Any:
    """Declare a size field: bytes, or a number with K, M, G or T (``"64M"``); read as ``int``."""
    return setting(default, help, SIZE_SCHEMA, convert=parse_size)


def optional_tuple(value: Any) -> tuple[Any, ...] | None:
    """Converter for a list that may be null: a tuple, or None."""
    return None if value is None else tuple(value)


def declarations(settings_class: type) -> dict[str, Setting]:
    """The :class:`Setting` of every field of ``settings_class``, in field order.

    Raises :class:`TypeError` for a class that is not a dataclass or has an undeclared field.
    """
    if not (isinstance(settings_class, type) and is_dataclass(settings_class)):
        raise TypeError(f"{settings_class!r} is not a settings dataclass")
    found: dict[str, Setting] = {}
    for item in fields(settings_class):
        declaration = item.metadata.get(METADATA_KEY)
        if not isinstance(declaration, Setting):
            raise TypeError(
                f"{settings_class.__qualname__}.{item.name} is not declared with setting()"
            )
        found[item.name] = declaration
    return found


def schema_of(settings_class: type) -> dict[str, Mapping[str, Any]]:
    """The JSON-Schema ``properties`` of the section ``settings_class`` declares."""
    return {name: d.schema for name, d in declarations(settings_class).items()}


def defaults_of(settings_class: type) -> dict[str, Any]:
    """The YAML defaults of the section (copies: callers may keep them)."""
    return {name: copy.deepcopy(d.default) for name, d in declarations(settings_class).items()}


def help_of(settings_class: type) -> dict[str, str]:
    """The help text of every key of the section."""
    return {name: d.help for name, d in declarations(settings_class).items()}


def build(settings_class: type[T], values: Mapping[str, Any]) -> T:
    """The typed section from validated ``values``; keys they leave out take their defaults.

    Keys ``values`` has that the class does not declare are ignored (validation refuses them
    before this runs).
    """
    kwargs = {
        name: d.typed(values[name]) if name in values else d.typed_default()
        for name, d in declarations(settings_class).items()
    }
    return settings_class(**kwargs)


__all__ = [
    "SIZE_PATTERN",
    "SIZE_SCHEMA",
    "Setting",
    "build",
    "declarations",
    "defaults_of",
    "help_of",
    "optional_tuple",
    "parse_size",
    "schema_of",
    "setting",
    "size_setting",
]
