"""Reading the policy's index keys and deciding holds: pure functions, no server."""

from __future__ import annotations

import pytest

from devpi_core.records import IndexRecord, Link, ProjectView
from devpi_core_policy.decide import decide
from devpi_core_policy.rules import KEYS, parse_duration, parse_time, parse_waiver, rules_of
from devpi_core_policy.service import Policy

CHECKS = {key.name: key.check for key in KEYS}


def check(key, value):
    checker = CHECKS[key]
    assert checker is not None
    return checker(value)

NOW = parse_time("2026-11-10T12:00:00Z")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("3d", 259200), ("72h", 259200), ("P3D", 259200), ("PT12H", 43200), ("2w", 1209600),
     ("90m", 5400), ("P1DT1H", 90000)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["soon", "3", "P", "PT", "-3d", "3 days"])
def test_bad_durations(text):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


def test_values_are_stored_normalized():
    assert check("exclude_newer", "2026-11-01") == "2026-11-01T00:00:00Z"
    assert check("exclude_newer", "2026-11-01T02:00:00+02:00") == "2026-11-01T00:00:00Z"
    assert check("deny", "Foo >= 3") == "Foo>=3"
    assert check("policy_exempt", "Acme_*") == "acme-*"
    waiver = check("waivers", "Requests==2.33.0@2026-12-31")
    assert waiver == "requests==2.33.0@2026-12-31T00:00:00Z"
    assert parse_waiver("requests==2.33").version == "2.33"
    for key, bad in (("deny", "evil pkg !!"), ("waivers", "requests"), ("waivers", "r==x.y"),
                     ("policy_exempt", "a/b"), ("exclude_newer", "yesterday")):
        with pytest.raises(ValueError, match=r"expected|invalid"):
            check(key, bad)


def _view(config, links, *, mirrors=frozenset({"root/pypi"})):
    index = IndexRecord("root", "pypi", {"type": "mirror", **config})
    return rules_of(index.fullname, index.config), ProjectView(index, "pkg", links, mirrors)


def _link(version, uploaded, stage="root/pypi"):
    name = f"pkg-{version}-py3-none-any.whl"
    return Link(name, f"{stage}/+f/abc/{name}", upload_time=uploaded, version=version)


LINKS = [_link("1.0", "2026-10-01T00:00:00.000Z"), _link("2.0", "2026-11-10T11:00:00Z"),
         _link("3.0rc1", None)]


def test_no_rules_is_no_policy():
    assert rules_of("root/pypi", {"waivers": ["a==1"], "policy_mode": "dry_run"}) is None


def test_age_rules_and_next_change():
    rules, view = _view({"min_release_age": "3d", "missing_upload_time": "allow"}, LINKS)
    outcome = decide(rules, view, NOW)
    assert [(h.version, h.rule) for h in outcome.holds] == [("2.0", "min_release_age")]
    assert outcome.next_change == parse_time("2026-11-13T11:00:00Z")
    rules, view = _view({"min_release_age": "3d"}, LINKS)
    assert [h.rule for h in decide(rules, view, NOW).holds] == [
        "min_release_age", "missing_upload_time"]


def test_own_files_are_exempt_unless_asked():
    links = [_link("2.0", "2026-11-10T11:00:00Z", stage="acme/prod")]
    rules, view = _view({"min_release_age": "3d"}, links)
    assert decide(rules, view, NOW).holds == ()
    rules, view = _view({"min_release_age": "3d", "policy_age_own_files": True}, links)
    assert len(decide(rules, view, NOW).holds) == 1


def test_deny_allow_exempt_waiver():
    rules, view = _view({"deny": ["pkg<2"]}, LINKS)
    assert [h.version for h in decide(rules, view, NOW).holds] == ["1.0"]
    rules, view = _view({"allow": ["pkg>=2"]}, LINKS)
    assert [h.version for h in decide(rules, view, NOW).holds] == ["1.0"]
    rules, view = _view({"min_release_age": "3d", "policy_exempt": ["p*"]}, LINKS)
    assert decide(rules, view, NOW).holds == ()
    rules, view = _view({"min_release_age": "3d", "missing_upload_time": "allow",
                         "waivers": ["pkg==2.0@2026-11-12T00:00:00Z"]}, LINKS)
    outcome = decide(rules, view, NOW)
    assert outcome.holds == ()
    assert outcome.next_change == parse_time("2026-11-12T00:00:00Z")  # the waiver's expiry


def test_exclude_newer_never_becomes_eligible():
    rules, view = _view({"exclude_newer": "2026-11-01T00:00:00Z",
                         "missing_upload_time": "allow"}, LINKS)
    outcome = decide(rules, view, NOW)
    assert [(h.version, h.rule) for h in outcome.holds] == [("2.0", "exclude_newer")]
    assert outcome.next_change is None


def test_policy_memory_is_bounded_and_a_dropped_project_is_decided_again():
    policy = Policy(clock=lambda: NOW, memory=3)
    index = IndexRecord("root", "pypi", {"type": "mirror", "min_release_age": "3d",
                                         "missing_upload_time": "allow"})

    def ask(project):
        policy.decide(ProjectView(index, project, LINKS, frozenset({"root/pypi"})))

    for n in range(10):
        ask(f"pkg{n}")
    assert len(policy._next) == 3
    assert policy.state(index, "pkg0")[0] == ("undecided",)  # dropped: decided again when asked
    assert policy.state(index, "pkg7")[0] == ("until", parse_time("2026-11-13T11:00:00Z"))
    ask("pkg10")  # the least recently used goes (pkg8), not pkg7 that was just asked
    assert policy.state(index, "pkg7")[0] != ("undecided",)
    assert policy.state(index, "pkg8")[0] == ("undecided",)
    ask("pkg0")
    assert policy.state(index, "pkg0")[1] is not None  # its next change known again
