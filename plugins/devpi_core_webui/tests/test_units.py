"""Unit tests: HTML building, value formatting, tox result summaries."""

from __future__ import annotations

import pytest

from devpi_core_webui.markup import (
    Markup,
    el,
    esc,
    human_size,
    iso_time,
    join,
    link,
    log_time,
    path,
    short_hash,
    void,
)
from devpi_core_webui.toxresults import summarize


def test_text_is_escaped_and_markup_is_not():
    assert esc("<a href='x'>&") == "&lt;a href=&#x27;x&#x27;&gt;&amp;"
    assert esc(Markup("<b>")) == "<b>"
    assert esc(None) == ""
    assert el("p", "<i>", el("b", "x")) == "<p>&lt;i&gt;<b>x</b></p>"
    assert join(["<", Markup("<br>")], " | ") == "&lt; | <br>"


def test_attributes():
    assert el("a", "x", href='"><script>', class_="c", data_id=1) == \
        '<a href="&quot;&gt;&lt;script&gt;" class="c" data-id="1">x</a>'
    box = void("input", name="q", required=True, disabled=False, value=None)
    assert box == '<input name="q" required>'
    assert link("/x?a=1&b=2", "go") == '<a href="/x?a=1&amp;b=2">go</a>'


def test_paths_quote_each_segment():
    assert path("alice", "dev") == "/alice/dev"
    assert path("a b", "x/y", "é") == "/a%20b/x%2Fy/%C3%A9"
    assert path("alice", "dev", "+simple", "") == "/alice/dev/+simple/"


@pytest.mark.parametrize(("size", "expected"), [
    (None, ""), (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (1234567, "1.2 MB"),
    (5 * 10**12, "5000.0 GB"),
])
def test_human_size(size, expected):
    assert human_size(size) == expected


def test_times():
    assert iso_time(None) == ""
    assert ">2024-01-02 03:04</time>" in iso_time("2024-01-02T03:04:05.123456Z")
    assert log_time([2024, 1, 2, 3, 4, 5]) == \
        '<time datetime="2024-01-02T03:04:05Z">2024-01-02 03:04:05 UTC</time>'
    assert ">1970-01-01 00:01:00 UTC<" in log_time(60)
    assert log_time("<odd>") == "&lt;odd&gt;"
    assert log_time([1, 2]) == "[1, 2]"


def test_short_hash_keeps_the_digest_in_a_tooltip():
    digest = "ab" * 32
    assert short_hash(digest) == f'<code title="sha256 {digest}" class="hash">abababababab…</code>'
    assert short_hash(None) == ""


def test_tox_summary():
    report = summarize("x", {
        "host": "h", "platform": "linux",
        "testenvs": {
            "py3": {"setup": [{"retcode": "0"}], "test": [{"retcode": 0}, {"retcode": "0"}],
                    "python": {"version": "3.11.2 (main)"}},
            "lint": {"setup": [{"retcode": "2"}]},
            "odd": "not a mapping",
        },
    })
    assert (report.host, report.platform, report.passed, report.failed) == ("h", "linux", 1, 1)
    lint, py3 = report.envs
    assert (lint.name, lint.setup_failed, lint.failed, lint.python) == ("lint", True, True, "")
    assert (py3.name, py3.failed, py3.commands, py3.python) == ("py3", False, 2, "3.11.2")


@pytest.mark.parametrize("data", [None, [], {"testenvs": []}, {"no": "envs"}])
def test_tox_summary_of_something_else(data):
    assert summarize("x", data).problem == "not a tox result"
