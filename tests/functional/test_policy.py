"""The ``policy`` plugin over the real mirror and stages plugins, with an injected clock.

A fake upstream serves releases with upload times the tests choose; the policy's clock is set,
never slept on. "Held" must mean the same everywhere: simple pages (HTML, PEP 691 JSON, PEP 700
``versions``), devpi's project and version JSON, and 403 on every URL of a held file.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urljoin

import pytest
from devpi_core_policy.rules import parse_time
from devpi_core_policy.service import Policy

from devpi_core import services
from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

NOW = parse_time("2026-11-10T12:00:00Z")


def _time(text: str) -> str:
    return text + ".000000Z"


@pytest.fixture
def env(make_app, fake_upstream):
    # old: 30 days; new: 1 hour before NOW
    fake_upstream.add("pkg", make_wheel(DistSpec("pkg", "1.0")),
                      upload_time=_time("2026-10-10T12:00:00"))
    fake_upstream.add("pkg", make_sdist(DistSpec("pkg", "1.0")),
                      upload_time=_time("2026-10-10T12:05:00"))
    fake_upstream.add("pkg", make_wheel(DistSpec("pkg", "2.0")),
                      upload_time=_time("2026-11-10T11:00:00"))
    fake_upstream.add("other", make_wheel(DistSpec("other", "3.0")),
                      upload_time=_time("2026-11-10T11:00:00"))
    client = make_app()
    client.login("root", "")
    client.create_index("root/up", type="mirror", mirror_url=fake_upstream.url,
                        mirror_cache_expiry=3600)
    policy = services.lookup(client.app.app.registry, Policy)
    clock = [NOW]
    policy.clock = lambda: clock[0]
    return client, clock, policy


def _versions(client, index, project):
    return client.simple(index, project, json_api=True).json["versions"]


def _link(client, index, project, filename):
    page = client.simple(index, project, json_api=True).json
    url = next(f["url"] for f in page["files"] if f["filename"] == filename)
    return urljoin(f"http://localhost/{index}/+simple/{project}/", url)[len("http://localhost"):]


def test_min_release_age_hides_new_version_everywhere(env):
    client, _clock, _policy = env
    new_file = "pkg-2.0-py3-none-any.whl"
    url = _link(client, "root/up", "pkg", new_file)  # as a lock file made earlier has it
    client.modify_index("root/up", ["min_release_age=3d"])
    assert _versions(client, "root/up", "pkg") == ["1.0"]
    assert new_file not in client.simple_filenames("root/up", "pkg")
    assert new_file not in client.simple("root/up", "pkg").text
    assert set(client.get_json("/root/up/pkg")["result"]) == {"1.0"}
    answer = client.get("/root/up/pkg/2.0", status=403, Accept="application/json")
    assert "min_release_age" in answer.json["message"]
    for path in (url, url.replace("/_f/", "/+f/"), url + ".metadata"):
        refused = client.get(path, status=403)
        message = refused.json["message"]
        assert "pkg 2.0" in message
        assert "min_release_age of root/up holds it until 2026-11-13T11:00:00Z" in message
    # the old version is untouched
    old = _link(client, "root/up", "pkg", "pkg-1.0-py3-none-any.whl")
    assert client.app.get(old).body.startswith(b"PK")


def test_held_version_appears_when_eligible_and_cache_follows(env):
    client, clock, _policy = env
    client.modify_index("root/up", ["min_release_age=3d"])
    first = client.simple("root/up", "pkg", json_api=True)
    # max-age never outlives the moment 2.0 becomes eligible (2026-11-13T11:00Z)
    max_age = int(first.headers["Cache-Control"].split("=")[1])
    assert 0 < max_age <= 71 * 3600
    clock[0] = parse_time("2026-11-13T10:59:59Z")
    same = client.simple("root/up", "pkg", json_api=True)
    assert same.headers["ETag"] == first.headers["ETag"]
    assert same.headers["Cache-Control"] == "max-age=1"
    clock[0] = parse_time("2026-11-13T11:00:00Z")
    later = client.simple("root/up", "pkg", json_api=True)
    assert later.json["versions"] == ["1.0", "2.0"]
    assert later.headers["ETag"] != first.headers["ETag"]
    url = _link(client, "root/up", "pkg", "pkg-2.0-py3-none-any.whl")
    assert client.app.get(url).body.startswith(b"PK")


def test_exclude_newer_deny_allow(env):
    client, _clock, _policy = env
    client.modify_index("root/up", ["exclude_newer=2026-11-01"])
    assert _versions(client, "root/up", "pkg") == ["1.0"]
    assert _versions(client, "root/up", "other") == []
    client.modify_index("root/up", {"exclude_newer": None, "deny": ["pkg==1.0"]})
    assert _versions(client, "root/up", "pkg") == ["2.0"]
    answer = client.get("/root/up/pkg/1.0", status=403, Accept="application/json")
    assert "denied by 'pkg==1.0'" in answer.json["message"]
    client.modify_index("root/up", {"deny": [], "allow": ["other"]})
    assert _versions(client, "root/up", "pkg") == []
    assert _versions(client, "root/up", "other") == ["3.0"]


def test_exemption_and_waiver(env):
    client, clock, _policy = env
    client.modify_index("root/up", ["min_release_age=3d", "policy_exempt=oth*"])
    assert _versions(client, "root/up", "other") == ["3.0"]
    assert _versions(client, "root/up", "pkg") == ["1.0"]
    client.modify_index("root/up", ["waivers+=pkg==2.0@2026-11-11T00:00:00Z"])
    assert _versions(client, "root/up", "pkg") == ["1.0", "2.0"]
    assert client.get_json("/root/up")["result"]["waivers"] == ["pkg==2.0@2026-11-11T00:00:00Z"]
    clock[0] = parse_time("2026-11-11T00:00:00Z")  # the waiver expired: held again
    assert _versions(client, "root/up", "pkg") == ["1.0"]


def test_stage_over_mirror_with_own_rules(env):
    client, _clock, _policy = env
    client.create_and_login("acme")
    client.create_index("acme/prod", bases="root/up", min_release_age="3d",
                        mirror_whitelist="pkg")
    assert _versions(client, "acme/prod", "pkg") == ["1.0"]
    # own uploads are exempt from the age rules, what comes from the mirror is not
    client.upload("acme/prod", make_wheel(DistSpec("pkg", "5.0")))
    assert _versions(client, "acme/prod", "pkg") == ["1.0", "5.0"]
    # the mirror itself has no rules
    assert _versions(client, "root/up", "pkg") == ["1.0", "2.0"]
    client.modify_index("acme/prod", ["policy_age_own_files=true"])
    assert _versions(client, "acme/prod", "pkg") == ["1.0"]


def test_rules_of_a_base_hold_on_indexes_over_it(env):
    client, _clock, _policy = env
    client.modify_index("root/up", ["min_release_age=3d"])
    client.create_and_login("acme")
    client.create_index("acme/prod", bases="root/up")
    # resolvers on acme/prod fall back to 1.0 rather than fail on the 403 of root/up's file
    assert _versions(client, "acme/prod", "pkg") == ["1.0"]
    assert set(client.get_json("/acme/prod/pkg")["result"]) == {"1.0"}
    client.get("/acme/prod/pkg/2.0", status=403, Accept="application/json")


def test_dry_run_changes_nothing_a_client_sees_but_audits(env, caplog):
    client, _clock, policy = env
    plain = client.simple("root/up", "pkg", json_api=True)
    client.modify_index("root/up", ["min_release_age=3d", "policy_mode=dry_run"])
    with caplog.at_level(logging.INFO, logger="devpi_core.policy.audit"):
        dry = client.simple("root/up", "pkg", json_api=True)
        client.simple("root/up", "pkg")
    assert dry.json == plain.json
    assert dry.body == plain.body
    lines = [json.loads(r.getMessage()) for r in caplog.records
             if r.name == "devpi_core.policy.audit"]
    assert lines == [{
        "event": "would_hold", "index": "root/up", "project": "pkg", "version": "2.0",
        "rule": "min_release_age", "eligible": "2026-11-13T11:00:00Z",
        "message": lines[0]["message"], "time": "2026-11-10T12:00:00Z",
    }]
    metrics = client.get_json("/+status")["result"]
    assert "devpi_policy_would_holds_total" in json.dumps(metrics)
    assert policy.counters.would_holds == 1
    assert policy.counters.holds == 0


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (["min_release_age=soon"], "min_release_age"),
        (["deny=evil pkg !!"], "deny"),
        (["exclude_newer=yesterday"], "exclude_newer"),
        (["waivers+=requests"], "waivers"),
        (["policy_mode=strict"], "policy_mode"),
    ],
)
def test_bad_values_are_400_naming_the_key_and_store_nothing(env, change, key):
    client, _clock, _policy = env
    before = client.get_json("/root/up")["result"]
    answer = client.modify_index("root/up", change, status=400)
    assert answer.json["message"].startswith(f"{key}")
    assert client.get_json("/root/up")["result"] == before
