"""Constraints: requirement strings limiting which versions of a project an index serves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from devpi_core.model.names import normalize

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from packaging.specifiers import SpecifierSet

_OPERATORS = ("<", ">", "=", "!", "~")


def _joined(items: Iterable[str]) -> list[str]:
    """Undo the comma split of a list key: ``["a>=1", "<2"]`` -> ``["a>=1,<2"]``."""
    joined: list[str] = []
    for item in items:
        text = item.strip()
        if joined and text.startswith(_OPERATORS):
            joined[-1] = f"{joined[-1]},{text}"
        elif text:
            joined.append(text)
    return joined


def _requirement(text: str) -> Requirement:
    requirement = Requirement(text)
    if requirement.url or requirement.marker is not None:
        raise InvalidRequirement("URLs and environment markers are not supported")
    return requirement


def version_of(filename: str) -> str | None:
    """The version in a wheel's or sdist's file name, or None if it has none we can read."""
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


@dataclass(frozen=True)
class Constraints:
    """Per normalized project name: the versions allowed (None: none at all)."""

    rules: Mapping[str, SpecifierSet | None]

    @staticmethod
    def problems(items: Iterable[str] | None) -> list[str]:
        """What is wrong with ``items`` (empty if each is a requirement)."""
        problems = []
        for text in _joined(items or ()):
            try:
                _requirement(text)
            except InvalidRequirement as exc:
                problems.append(f"invalid requirement {text!r}: {exc}")
        return problems

    @classmethod
    def parse(cls, items: Iterable[str] | None) -> Constraints:
        """The constraints of ``items`` (validated when the index was configured)."""
        rules: dict[str, SpecifierSet | None] = {}
        for text in _joined(items or ()):
            requirement = _requirement(text)
            name = normalize(requirement.name)
            if not requirement.specifier:
                rules[name] = None  # a bare name: never
            elif name not in rules:
                rules[name] = requirement.specifier
            elif (current := rules[name]) is not None:
                rules[name] = current & requirement.specifier
        return cls(rules)

    def excludes(self, project: str) -> bool:
        """Whether no version of ``project`` is served."""
        name = normalize(project)
        return name in self.rules and self.rules[name] is None

    def allows(self, project: str, version: str | None) -> bool:
        """Whether ``version`` of ``project`` is served (pre-releases as any other version:
        installers decide about those; an unreadable version of a constrained project is not)."""
        name = normalize(project)
        if name not in self.rules:
            return True
        specifier = self.rules[name]
        if specifier is None or version is None:
            return False
        try:
            return specifier.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return False

    def describe(self, project: str) -> str:
        """The constraint on ``project``, for messages."""
        specifier = self.rules.get(normalize(project))
        return f"{project} (never)" if specifier is None else f"{project}{specifier}"
