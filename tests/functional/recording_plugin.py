"""A test plugin that implements the hooks no bundled plugin uses, the way a third party would.

- ``devpi_identity_groups``: users named in ``plugins.recorder.groups`` get those groups;
- ``devpi_simple_policies``: a deny list (``plugins.recorder.deny``: ``name`` or ``name==version``);
- the event hooks record every event; ``devpi_metrics`` and ``devpi_api_features`` report on them;
- ``devpi_config_sections`` and ``devpi_pyramid_includes`` read the settings at start-up.

It is an object rather than a module so every test gets its own state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devpi_core import hookimpl, services
from devpi_core.interfaces import SimplePolicy
from devpi_core.specs import ConfigSection

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence

    from devpi_core.records import (
        DeleteEvent,
        Identity,
        IndexEvent,
        IndexRecord,
        Link,
        MirrorRefreshEvent,
        UploadEvent,
    )

SCHEMA = {
    "deny": {"type": "array", "items": {"type": "string"}},
    "groups": {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
    "fail_events": {"type": "boolean"},
}
DEFAULTS: dict[str, Any] = {"deny": [], "groups": {}, "fail_events": False}


class DenyList(SimplePolicy):
    """Hides whole projects (``name``) or single versions (``name==version``)."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = frozenset(entries)

    def cache_key(self, index: IndexRecord, project: str) -> Hashable:
        return tuple(sorted(self.entries))

    def filter(self, index: IndexRecord, project: str, links: Sequence[Link]) -> Sequence[Link]:
        if project in self.entries:
            return []
        return [link for link in links if f"{project}=={link.version}" not in self.entries]


class Recorder:
    """Records events and applies its settings; register with ``modules=[("recorder", r)]``."""

    def __init__(self) -> None:
        self.events: list[UploadEvent | DeleteEvent | IndexEvent | MirrorRefreshEvent] = []
        self.settings: dict[str, Any] = dict(DEFAULTS)
        self.policy_calls: list[str] = []

    def of_type(self, kind: type) -> list[Any]:
        """The recorded events of one type."""
        return [event for event in self.events if isinstance(event, kind)]

    def _include(self, config: Any) -> None:
        self.settings = dict(services.settings(config.registry).plugin("recorder"))

    @hookimpl
    def devpi_config_sections(self) -> list[ConfigSection]:
        return [ConfigSection("recorder", SCHEMA, DEFAULTS, {"deny": "names hidden from pages"})]

    @hookimpl
    def devpi_pyramid_includes(self) -> list[Any]:
        return [self._include]

    @hookimpl
    def devpi_identity_groups(self, request: Any, identity: Identity) -> list[str]:
        return list(self.settings["groups"].get(identity.username, []))

    @hookimpl
    def devpi_simple_policies(self, index: IndexRecord) -> list[SimplePolicy]:
        self.policy_calls.append(index.fullname)
        return [DenyList(self.settings["deny"])] if self.settings["deny"] else []

    def _record(self, event: Any) -> None:
        if self.settings["fail_events"]:
            raise RuntimeError("a buggy event hook")
        self.events.append(event)

    @hookimpl
    def devpi_on_upload(self, event: UploadEvent) -> None:
        self._record(event)

    @hookimpl
    def devpi_on_delete(self, event: DeleteEvent) -> None:
        self._record(event)

    @hookimpl
    def devpi_on_index_change(self, event: IndexEvent) -> None:
        self._record(event)

    @hookimpl
    def devpi_on_mirror_refresh(self, event: MirrorRefreshEvent) -> None:
        self._record(event)

    @hookimpl
    def devpi_api_features(self) -> list[str]:
        return ["recorder-events"]

    @hookimpl
    def devpi_metrics(self) -> list[tuple[str, str, float]]:
        return [("recorder_events_total", "counter", float(len(self.events)))]
