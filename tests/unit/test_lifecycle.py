"""Plugin lifecycle: ``devpi_startup`` once per process, ``devpi_shutdown`` in reverse order.

Plugins register their services at start-up on the :class:`ServiceRegistry` they get; index
types reach them through ``env.services``; nothing is registered with the plugin manager at
run time.
"""

from __future__ import annotations

import logging

import pytest

from devpi_core import hookimpl, services
from devpi_core.bootstrap import load_plugins, open_core
from devpi_core.interfaces import MetadataStore
from devpi_core.plugins import make_pm
from devpi_core.serverdir import create
from devpi_core.services import ServiceRegistry


class Lifecycle:
    """Appends ``("start"|"stop", name)`` to a shared journal; may fail on request."""

    def __init__(self, name, journal, *, fail_start=False, fail_stop=False):
        self.name = name
        self.journal = journal
        self.fail_start = fail_start
        self.fail_stop = fail_stop

    @hookimpl
    def devpi_startup(self, services):
        if self.fail_start:
            raise RuntimeError(f"{self.name} cannot start")
        services.register(type(self), self)
        self.journal.append(("start", self.name))

    @hookimpl
    def devpi_shutdown(self, services):
        self.journal.append(("stop", self.name))
        if self.fail_stop:
            raise RuntimeError(f"{self.name} cannot stop")


def plugins_of(*plugins):
    return make_pm([(p.name, p) for p in plugins], entrypoints=False)


def test_shutdown_runs_in_the_reverse_order_of_startup():
    journal = []
    pm = plugins_of(*(Lifecycle(name, journal) for name in ("a", "b", "c")))
    registry = ServiceRegistry({})
    started = pm.startup(registry)
    pm.shutdown(registry, started)
    starts = [name for what, name in journal if what == "start"]
    stops = [name for what, name in journal if what == "stop"]
    assert sorted(starts) == ["a", "b", "c"]
    assert stops == starts[::-1]
    assert journal[:3] == [("start", name) for name in starts]  # all start before any stops


def test_tryfirst_is_honoured_and_stops_last():
    journal = []

    class Early(Lifecycle):
        @hookimpl(tryfirst=True)
        def devpi_startup(self, services):
            journal.append(("start", self.name))

    pm = plugins_of(Lifecycle("a", journal), Early("early", journal), Lifecycle("b", journal))
    registry = ServiceRegistry({})
    pm.shutdown(registry, pm.startup(registry))
    assert journal[0] == ("start", "early")
    assert journal[-1] == ("stop", "early")


def test_a_failing_start_stops_the_plugins_already_started():
    journal = []
    first, second = Lifecycle("a", journal), Lifecycle("b", journal)
    broken = Lifecycle("broken", journal, fail_start=True)
    # pluggy calls the last registered first: broken starts after a and b
    pm = make_pm([("broken", broken), ("b", second), ("a", first)], entrypoints=False)
    with pytest.raises(RuntimeError, match="broken cannot start"):
        pm.startup(ServiceRegistry({}))
    assert journal == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]


def test_a_failing_stop_is_logged_and_the_others_still_stop(caplog):
    journal = []
    pm = make_pm(
        [("bad", Lifecycle("bad", journal, fail_stop=True)), ("a", Lifecycle("a", journal))],
        entrypoints=False,
    )
    registry = ServiceRegistry({})
    with caplog.at_level(logging.ERROR):
        pm.shutdown(registry, pm.startup(registry))
    assert [entry for entry in journal if entry[0] == "stop"] == [("stop", "bad"), ("stop", "a")]
    assert "devpi_shutdown of plugin bad failed" in caplog.text


def test_a_command_without_a_web_app_starts_and_stops_the_plugins(tmp_path):
    """``devpi-core init``/``passwd`` open the stores with open_core: the same lifecycle."""
    journal = []
    plugin = Lifecycle("mine", journal)

    class ReadsAtShutdown:
        store_was_open = None

        @hookimpl
        def devpi_shutdown(self, services):
            # plugins stop before the stores close: a last flush can still write
            with services.get(MetadataStore).read() as tx:
                ReadsAtShutdown.store_was_open = tx.get("nothing") is None

    plugins, settings = load_plugins(
        None, modules=[("mine", plugin), ("reader", ReadsAtShutdown())]
    )
    settings = settings.with_overrides(serverdir=str(tmp_path / "serverdir"))
    core = open_core(plugins, settings, create(str(tmp_path / "serverdir")))
    assert journal == [("start", "mine")]
    # index types get the same services, typed: what the plugin registered at start-up
    assert core.env.services.get(Lifecycle) is plugin
    with pytest.raises(LookupError, match="no service ServiceRegistry is registered"):
        core.env.services.get(ServiceRegistry)
    core.close()
    core.close()  # idempotent: a second close neither stops twice nor fails
    assert journal == [("start", "mine"), ("stop", "mine")]
    assert ReadsAtShutdown.store_was_open is True


def test_the_web_app_starts_plugins_once_and_stops_them_at_shutdown(make_app):
    journal = []
    plugin = Lifecycle("mine", journal)
    client = make_app(modules=(("mine", plugin),))
    registry = client.app.app.registry
    assert journal == [("start", "mine")]
    assert ServiceRegistry.of(registry).get(Lifecycle) is plugin
    assert services.plugins(registry).names().count("mine") == 1
    services.shutdown(registry)
    assert journal == [("start", "mine"), ("stop", "mine")]


def test_the_mirror_registers_no_plugin_at_run_time(make_app, fake_upstream):
    client = make_app()
    plugins = services.plugins(client.app.app.registry)
    before = [name for name, _plugin in plugins.pm.list_name_plugin()]
    client.create_and_login("alice")
    client.create_index("alice/m", type="mirror", mirror_url=fake_upstream.url + "/simple/")
    status = client.get_json("/+status")["result"]
    assert "devpi_mirror_writes_pending" in {m[0] for m in status["metrics"]}
    assert [name for name, _plugin in plugins.pm.list_name_plugin()] == before


def test_what_start_up_built_is_left_out_of_later_collections():
    import gc  # noqa: PLC0415

    from devpi_core.heap import settle_garbage_collector  # noqa: PLC0415

    before = gc.get_freeze_count()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
