"""Event hooks go through pluggy: wrappers, partial signatures, and errors that never escape."""

from __future__ import annotations

import logging

from devpi_core import hookimpl
from devpi_core.plugins import make_pm
from devpi_core.records import UploadEvent
from devpi_core.services import ServiceRegistry

EVENT = UploadEvent("a/b", "p", "1.0", "p-1.0.tar.gz", "releasefile", "a", 3)

NO_SERVICES = ServiceRegistry({})


class Indexer:
    """An implementation that returns something, so a wrapper has results to look at."""

    def __init__(self, fail=False):
        self.seen = []
        self.fail = fail

    @hookimpl
    def devpi_on_upload(self, event):
        if self.fail:
            raise RuntimeError("plugin bug")
        self.seen.append(event)
        return "indexed"


class Wrapper:
    """A new-style wrapper around every other implementation."""

    def __init__(self, fail_after=False):
        self.events = []
        self.results = []
        self.errors = []
        self.fail_after = fail_after

    @hookimpl(wrapper=True)
    def devpi_on_upload(self, event):
        self.events.append(event)
        try:
            results = yield
        except Exception as exc:
            self.errors.append(exc)
            raise
        self.results.append(list(results))
        if self.fail_after:
            raise RuntimeError("wrapper bug")
        return results


class OldStyleWrapper:
    def __init__(self):
        self.outcomes = []

    @hookimpl(hookwrapper=True)
    def devpi_on_upload(self, event):
        outcome = yield
        self.outcomes.append((event, outcome.get_result()))


def test_a_wrapper_sees_the_event_and_the_results():
    wrapper, indexer = Wrapper(), Indexer()
    plugins = make_pm([("indexer", indexer), ("wrapper", wrapper)], entrypoints=False)
    plugins.emit(EVENT, NO_SERVICES)
    assert wrapper.events == [EVENT]
    assert wrapper.results == [["indexed"]]
    assert indexer.seen == [EVENT]


def test_an_old_style_hookwrapper_sees_the_outcome():
    wrapper = OldStyleWrapper()
    plugins = make_pm([("indexer", Indexer()), ("old", wrapper)], entrypoints=False)
    plugins.emit(EVENT, NO_SERVICES)
    assert wrapper.outcomes == [(EVENT, ["indexed"])]


def test_an_implementation_taking_fewer_arguments_is_called(caplog):
    calls = []

    class Counter:
        @hookimpl
        def devpi_on_upload(self):
            calls.append("called")

    plugins = make_pm([("counter", Counter())], entrypoints=False)
    with caplog.at_level(logging.ERROR, logger="devpi_core.plugins"):
        plugins.emit(EVENT, NO_SERVICES)
    assert calls == ["called"]
    assert "failed" not in caplog.text


def test_a_failing_implementation_is_logged_with_its_name_and_ends_the_call(caplog):
    # pluggy calls the last registered first: "bad" runs before "good", which is then skipped
    good, wrapper = Indexer(), Wrapper()
    plugins = make_pm(
        [("wrapper", wrapper), ("good", good), ("bad", Indexer(fail=True))], entrypoints=False
    )
    with caplog.at_level(logging.ERROR, logger="devpi_core.plugins"):
        plugins.emit(EVENT, NO_SERVICES)  # does not raise: the write was committed already
    assert "event hook devpi_on_upload of plugin bad failed" in caplog.text
    assert "RuntimeError: plugin bug" in caplog.text
    assert [type(exc) for exc in wrapper.errors] == [RuntimeError]
    assert good.seen == []


def test_a_failing_wrapper_is_logged_with_its_name(caplog):
    indexer = Indexer()
    plugins = make_pm(
        [("indexer", indexer), ("wrapper", Wrapper(fail_after=True))], entrypoints=False
    )
    with caplog.at_level(logging.ERROR, logger="devpi_core.plugins"):
        plugins.emit(EVENT, NO_SERVICES)
    assert indexer.seen == [EVENT]
    assert "event hook devpi_on_upload of plugin wrapper failed" in caplog.text
