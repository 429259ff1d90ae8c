"""Searching a mirror's upstream project list: tiers, limits, no partial names."""

from __future__ import annotations

from devpi_core_mirror import names
from devpi_core_mirror.names import _find

LIST = b"\n" + b"\n".join([b"xhello", b"hello-world", b"hello", b"shell", b"help", b"hell"]) + b"\n"


def test_exact_then_prefixes_then_substrings():
    assert _find(LIST, b"hell", 10) == ["hell", "hello-world", "hello", "xhello", "shell"]
    assert _find(LIST, b"hello", 10) == ["hello", "hello-world", "xhello"]


def test_limit_keeps_the_best_tiers():
    assert _find(LIST, b"hell", 2) == ["hell", "hello-world"]
    assert _find(LIST, b"el", 3) == ["xhello", "hello-world", "hello"]


def test_whole_names_only_and_odd_needles():
    assert _find(LIST, b"world", 10) == ["hello-world"]
    assert _find(LIST, b"", 10) == []
    assert _find(LIST, b"a\nb", 10) == []
    assert _find(b"\n", b"x", 10) == []


def test_a_needle_found_too_often_still_lists_exact_and_prefixes(monkeypatch):
    monkeypatch.setattr(names, "SCAN_CAP", 2)
    data = b"\n" + b"\n".join([b"xa", b"ya", b"za", b"ab", b"a", b"ac"]) + b"\n"
    assert _find(data, b"a", 10)[:3] == ["a", "ab", "ac"]
    assert _find(data, b"a", 2) == ["a", "ab"]
