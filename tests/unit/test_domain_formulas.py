"""The one definition of each domain formula: content negotiation and the hash a file is known by.

Each case stands for a caller that used to carry its own copy: the simple pages (PEP 691), the
error views (JSON, text or HTML), the web UI's browser test and the fake upstream.
"""

from __future__ import annotations

import pytest

from devpi_core.records import Link, best_hash, hash_spec
from devpi_core.web import best_offer

SIMPLE = (
    "text/html",
    "application/vnd.pypi.simple.v1+html",
    "application/vnd.pypi.simple.latest+html",
    "application/vnd.pypi.simple.v1+json",
    "application/vnd.pypi.simple.latest+json",
)
ERRORS = ("application/json", "text/plain", "text/html")
PIP = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, "
    "text/html; q=0.01"
)
UV = (
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, "
    "text/html;q=0.01"
)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.mark.parametrize(
    ("header", "offers", "expected"),
    [
        # a missing header accepts everything: the first offer wins
        (None, SIMPLE, "text/html"),
        (None, ERRORS, "application/json"),
        # an unparsable one counts as missing; an empty one accepts nothing
        ("garbage;;;", ERRORS, "application/json"),
        ("", SIMPLE, None),
        # q-values rank; pip and uv prefer PEP 691 JSON over the HTML they also name
        (PIP, SIMPLE, "application/vnd.pypi.simple.v1+json"),
        (UV, SIMPLE, "application/vnd.pypi.simple.v1+json"),
        ("application/vnd.pypi.simple.v1+json;q=0.2, text/html", SIMPLE, "text/html"),
        ("application/vnd.pypi.simple.latest+json", SIMPLE, SIMPLE[4]),
        ("application/vnd.pypi.simple.v1+html", SIMPLE, "application/vnd.pypi.simple.v1+html"),
        # */* (curl) and ties go to the earlier offer
        ("*/*", SIMPLE, "text/html"),
        ("*/*", ERRORS, "application/json"),
        ("text/html, application/json", ERRORS, "application/json"),
        # the more specific range sets the q of an offer; q=0 refuses
        (BROWSER, ERRORS, "text/html"),
        ("text/*;q=0.5, application/json;q=0.4", ERRORS, "text/plain"),
        ("text/html;q=0", ("text/html",), None),
        ("application/json", ("text/html", "application/xhtml+xml"), None),
    ],
)
def test_best_offer(header, offers, expected):
    assert best_offer(header, offers) == expected


def test_best_offer_remembers_answers():
    best_offer.cache_clear()
    best_offer(PIP, SIMPLE)
    best_offer(PIP, SIMPLE)
    assert best_offer.cache_info().hits >= 1


@pytest.mark.parametrize(
    ("hashes", "expected"),
    [
        ({"sha256": "aa"}, ("sha256", "aa")),
        # sha256 wins wherever it stands
        ({"md5": "bb", "sha256": "aa"}, ("sha256", "aa")),
        # else the first hash given (the one the +f/ path of a mirrored file is named by)
        ({"md5": "bb", "sha512": "cc"}, ("md5", "bb")),
        ({"sha512": "cc", "md5": "bb"}, ("sha512", "cc")),
        ({}, None),
    ],
)
def test_best_hash(hashes, expected):
    assert best_hash(hashes) == expected
    spec = "" if expected is None else f"{expected[0]}={expected[1]}"
    assert hash_spec(hashes) == spec
    # the link's URL fragment uses the same choice
    assert Link("pkg-1.0.tar.gz", "a/b/+f/pkg-1.0.tar.gz", hashes).hash_spec == spec
