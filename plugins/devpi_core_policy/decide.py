"""Pure decisions: which versions of a project one index's rules hold, and until when."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from devpi_core_policy.rules import iso

if TYPE_CHECKING:
    from collections.abc import Sequence

    from packaging.requirements import Requirement

    from devpi_core.records import Link, ProjectView
    from devpi_core_policy.rules import Rules


@dataclass(frozen=True)
class Hold:
    """One held version: the rule that holds it, the client's message, when it is eligible."""

    version: str
    rule: str
    message: str
    eligible: float | None = None


@dataclass(frozen=True)
class Outcome:
    """The holds of one project, and when the outcome changes next (None: not by time)."""

    holds: tuple[Hold, ...]
    next_change: float | None


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _matches(req: Requirement, project: str, version: str) -> bool:
    if canonicalize_name(req.name) != project:
        return False
    if not req.specifier:
        return True
    try:
        return req.specifier.contains(Version(version), prereleases=True)
    except InvalidVersion:
        return False


def _canonical(version: str) -> str:
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def _group(links: Sequence[Link]) -> dict[str, list[Link]]:
    versions: dict[str, list[Link]] = {}
    for link in links:
        if link.version is not None:
            versions.setdefault(link.version, []).append(link)
    return versions


class _Decider:
    def __init__(self, rules: Rules, view: ProjectView, now: float) -> None:
        self.rules = rules
        self.view = view
        self.project = canonicalize_name(view.project)
        self.now = now
        self.next_change: float | None = None
        self.age_rules = rules.has_age_rules and not rules.is_exempt(self.project)

    def _later(self, when: float) -> None:
        if when > self.now and (self.next_change is None or when < self.next_change):
            self.next_change = when

    def _name(self, version: str) -> str:
        return f"{self.view.project} {version}"

    def version(self, version: str, links: Sequence[Link]) -> Hold | None:
        rules, index = self.rules, self.rules.index
        if rules.allow and not any(_matches(r, self.project, version) for r in rules.allow):
            return Hold(version, "allow",
                        f"{self._name(version)} is not in the allow list of {index}")
        for req in rules.deny:
            if _matches(req, self.project, version):
                return Hold(version, "deny",
                            f"{self._name(version)} is denied by {str(req)!r} on {index}")
        if not self.age_rules:
            return None
        return self._age(version, links)

    def _waived(self, version: str) -> bool:
        canonical = _canonical(version)
        for waiver in self.rules.waivers:
            if waiver.project == self.project and waiver.version == canonical:
                if waiver.expires is None:
                    return True
                if self.now < waiver.expires:
                    self._later(waiver.expires)  # held again once the waiver expires
                    return True
        return False

    def _age(self, version: str, links: Sequence[Link]) -> Hold | None:
        rules, index = self.rules, self.rules.index
        subject = [
            link for link in links if rules.own_files or link.stage in self.view.mirrors
        ]
        if not subject or self._waived(version):
            return None
        times = [_timestamp(link.upload_time) for link in subject]
        if any(t is None for t in times):
            if rules.missing_allowed:
                return None
            return Hold(version, "missing_upload_time",
                        f"{self._name(version)} has no upload time; the age rules of "
                        f"{index} hold it (missing_upload_time=hold)")
        uploaded = min(t for t in times if t is not None)
        if rules.exclude_newer is not None and uploaded > rules.exclude_newer:
            return Hold(version, "exclude_newer",
                        f"{self._name(version)} was uploaded {iso(uploaded)}, after "
                        f"exclude_newer {iso(rules.exclude_newer)} of {index}")
        if rules.min_age is not None:
            eligible = uploaded + rules.min_age
            if self.now < eligible:
                self._later(eligible)
                return Hold(version, "min_release_age",
                            f"{self._name(version)} was uploaded {iso(uploaded)}; "
                            f"min_release_age of {index} holds it until {iso(eligible)}",
                            eligible)
        return None


def decide(rules: Rules, view: ProjectView, now: float) -> Outcome:
    """The holds of ``view.project`` under ``rules`` at time ``now``."""
    decider = _Decider(rules, view, now)
    holds = [
        hold
        for version, links in _group(view.links).items()
        if (hold := decider.version(version, links)) is not None
    ]
    return Outcome(tuple(holds), decider.next_change)
