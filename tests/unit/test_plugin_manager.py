"""The plugin manager: loading, blocking, duplicate registrations, typed hook calls, events."""

from __future__ import annotations

import pytest

from devpi_core import hookimpl
from devpi_core.errors import ConfigError
from devpi_core.plugins import ENTRYPOINT_GROUP, available_entrypoints, make_pm, select_entrypoints
from devpi_core.records import DeleteEvent, Identity, IndexEvent, UploadEvent
from devpi_core.services import ServiceRegistry
from devpi_core.specs import ConfigSection, StorageBackend

BUNDLED = {"fsstore", "passwd", "stages", "mirror"}

NO_SERVICES = ServiceRegistry({})


class Storage:
    """A plugin object offering one metadata backend named ``name``."""

    def __init__(self, name):
        self.name = name

    @hookimpl
    def devpi_metadata_backends(self):
        return [StorageBackend(self.name, lambda _dir, _settings: None)]


class Events:
    def __init__(self, fail=False):
        self.seen = []
        self.fail = fail

    @hookimpl
    def devpi_on_upload(self, event):
        if self.fail:
            raise RuntimeError("plugin bug")
        self.seen.append(event)

    @hookimpl
    def devpi_on_index_change(self, event):
        self.seen.append(event)


def test_bundled_plugins_come_from_entry_points_of_this_distribution():
    found = available_entrypoints()
    assert set(found) >= BUNDLED
    for name in BUNDLED:
        ep, dist, _version = found[name]
        assert ep.group == ENTRYPOINT_GROUP
        assert dist.lower().replace("_", "-") == "devpi-core"
        assert ep.value == f"devpi_core_{name}"


def test_bundled_plugins_are_on_unless_disabled():
    chosen = {ep.name for ep, _dist, _v in select_entrypoints((), ())}
    assert chosen >= BUNDLED
    chosen = {ep.name for ep, _dist, _v in select_entrypoints((), ("fsstore",))}
    assert "fsstore" not in chosen


def test_unknown_names_are_refused_with_the_list():
    with pytest.raises(ConfigError) as info:
        select_entrypoints(("nope",), ())
    (error,) = info.value.errors
    assert error.startswith("plugins.enabled: unknown plugin 'nope'; available: ")
    assert "stages" in error


def test_entry_point_plugins_report_their_distribution():
    plugins = make_pm()
    infos = {info.name: info for info in plugins.infos}
    assert set(infos) >= BUNDLED
    assert infos["fsstore"].bundled
    assert infos["fsstore"].module == "devpi_core_fsstore"
    assert "devpi_metadata_backends" in plugins.hooks_of("fsstore")


def test_disabled_plugin_is_blocked_and_a_replacement_provides_the_hook():
    replacement = Storage("sqlite")  # same backend name as fsstore's: only one may be active
    plugins = make_pm([("mystore", replacement)], disabled=("fsstore",))
    assert "fsstore" not in plugins.names()
    assert plugins.metadata_backends()["sqlite"].factory("x", {}) is None


def test_two_plugins_with_the_same_backend_name_are_refused():
    plugins = make_pm([("a", Storage("same")), ("b", Storage("same"))], entrypoints=False)
    with pytest.raises(ConfigError, match="two plugins provide the metadata backend 'same'"):
        plugins.metadata_backends()


def test_object_plugins_are_listed_by_class_name():
    plugins = make_pm([("obj", Storage("x"))], entrypoints=False)
    (info,) = plugins.infos
    assert (info.name, info.module, info.bundled) == ("obj", "Storage", False)
    assert plugins.hooks_of("obj") == ["devpi_metadata_backends"]
    assert plugins.hooks_of("not-registered") == []


def test_unknown_hook_implementation_fails_at_start_up():
    class Typo:
        @hookimpl
        def devpi_on_uplaod(self, event):
            pass

    with pytest.raises(Exception, match="unknown hook 'devpi_on_uplaod'"):
        make_pm([("typo", Typo())], entrypoints=False)


def test_duplicate_config_sections_are_refused():
    class Section:
        @hookimpl
        def devpi_config_sections(self):
            return [ConfigSection("shared", {})]

    plugins = make_pm([("a", Section()), ("b", Section())], entrypoints=False)
    with pytest.raises(ConfigError, match="two plugins provide the config section 'shared'"):
        plugins.config_sections()


def test_identity_groups_are_merged_without_duplicates():
    class Groups:
        def __init__(self, groups):
            self.groups = groups

        @hookimpl
        def devpi_identity_groups(self, request, identity):
            return self.groups

    plugins = make_pm([("a", Groups(["x", "y"])), ("b", Groups(["y", "z"]))], entrypoints=False)
    groups = plugins.identity_groups(None, Identity("alice", ("w", "x")))
    assert sorted(groups) == ["w", "x", "y", "z"]
    assert len(groups) == 4


def test_events_reach_their_hook_only():
    recorder = Events()
    plugins = make_pm([("events", recorder)], entrypoints=False)
    upload = UploadEvent("a/b", "p", "1.0", "p-1.0.tar.gz", "releasefile", "a", 3)
    change = IndexEvent("a/b", "created", {"type": "stage"}, "a", 4)
    plugins.emit(upload, NO_SERVICES)
    plugins.emit(change, NO_SERVICES)
    plugins.emit(DeleteEvent("a/b", "p", None, None, "a", 5), NO_SERVICES)  # nobody listens: fine
    assert recorder.seen == [upload, change]


def test_api_features_are_sorted_and_unique():
    class Features:
        def __init__(self, *names):
            self.names = list(names)

        @hookimpl
        def devpi_api_features(self):
            return self.names

    plugins = make_pm([("a", Features("z", "a")), ("b", Features("a", "m"))], entrypoints=False)
    assert plugins.api_features() == ["a", "m", "z"]
