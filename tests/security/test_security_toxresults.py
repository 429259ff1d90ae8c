"""Tox results: read access first, limits on size and number, bounded version pages.

Anonymous POSTs attached results to files of an index behind ``acl_read`` (and 404 vs 200 told
whether a file existed); 20 anonymous 3.8 MB results made one public version page cost seconds
and 51 MB of HTML per view.
"""

from __future__ import annotations

import pytest
from devpi_core_webui import toxresults

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

REPORT = {"reportversion": "1", "host": "ci", "testenvs": {"py3": {"test": [{"retcode": 0}]}}}
BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
}


def release(make_app, config=None, *, acl_read=None):
    """alice/dev with pkg 1.0 (a wheel and an sdist); the client is logged out."""
    client = make_app(config)
    client.create_and_login("alice")
    client.create_user("bob")
    client.create_index("alice/dev", **({"acl_read": acl_read} if acl_read else {}))
    spec = DistSpec("pkg", "1.0")
    client.upload("alice/dev", make_wheel(spec))
    client.upload("alice/dev", make_sdist(spec))
    links = client.get_json("/alice/dev/pkg/1.0")["result"]["+links"]
    client.hrefs = sorted(link["href"].replace("http://localhost", "") for link in links)
    client.logout()
    return client


def post(client, href, report=REPORT, *, status: int | str = "*"):
    return client.request("POST", href, report, status=status)


def stored_results(client):
    client.login("alice")
    links = client.get_json("/alice/dev/pkg/1.0")["result"]["+links"]
    client.logout()
    return [link for link in links if link["rel"] == "toxresult"]


def test_unreadable_index_answers_alike_for_existing_and_missing_files(make_app):
    client = release(make_app, acl_read=["alice"])
    existing = client.hrefs[0]
    missing = existing.rsplit("/", 1)[0] + "/nothere-1.0.tar.gz"
    anonymous = [post(client, href) for href in (existing, missing)]
    assert [r.status_int for r in anonymous] == [401, 401]
    assert anonymous[0].json["message"] == anonymous[1].json["message"]
    client.login("bob")
    as_bob = [post(client, href) for href in (existing, missing)]
    assert [r.status_int for r in as_bob] == [403, 403]
    assert as_bob[0].json["message"] == as_bob[1].json["message"]
    client.logout()
    assert stored_results(client) == []
    # who may read still attaches results (acl_toxresult_upload is anonymous by default)
    client.login("alice")
    post(client, existing, status=200)
    post(client, missing, status=404)
    assert len(stored_results(client)) == 1


def test_results_are_limited_in_size(make_app):
    client = release(make_app)
    big = {**REPORT, "output": "x" * (1 << 20)}
    response = post(client, client.hrefs[0], big)
    assert response.status_int == 413
    assert "toxresult_max_size" in response.json["message"]
    post(client, client.hrefs[0], status=200)
    assert len(stored_results(client)) == 1


def test_results_are_limited_in_number_per_file(make_app):
    client = release(make_app, {"plugins": {"stages": {"toxresults_per_file": 3}}})
    wheel, sdist = client.hrefs
    for n in range(3):
        post(client, wheel, {**REPORT, "run": n}, status=200)
    response = post(client, wheel, {**REPORT, "run": 3})
    assert response.status_int == 409
    assert "has 3 tox results" in response.json["message"]
    assert "toxresults_per_file" in response.json["message"]
    post(client, sdist, status=200)  # another file has its own count
    assert len(stored_results(client)) == 4


def browse(client, path="/alice/dev/pkg/1.0"):
    return client.app.get(path, headers=BROWSER, status=200).text


def test_version_page_shows_the_newest_results_and_counts_the_rest(make_app):
    client = release(make_app)
    wheel = client.hrefs[1] if client.hrefs[1].endswith(".whl") else client.hrefs[0]
    for n in range(14):
        post(client, wheel, {**REPORT, "host": f"host-{n:02d}"}, status=200)
    page = browse(client)
    shown = sorted({part.split("<")[0] for part in page.split("host-")[1:]})
    assert shown == [f"{n:02d}" for n in range(4, 14)]
    assert "4 older tox results not shown" in page


def test_version_page_is_bounded_by_summaries_not_result_sizes(make_app):
    config = {"plugins": {"stages": {"toxresult_max_size": "4M"}}}
    client = release(make_app, config)
    envs = {f"env{n:03d}": {"test": [{"retcode": n % 2}]} for n in range(200)}
    report = {"host": "h" * 300_000, "platform": "p" * 300_000, "testenvs": envs}
    for _ in range(3):
        post(client, client.hrefs[0], report, status=200)
    page = browse(client)
    assert len(page) < 100_000, len(page)
    assert page.count("170 more environments") == 3
    # the counts cover every environment of the three results
    assert "300 passed" in page
    assert "300 failed" in page


@pytest.fixture
def summaries(monkeypatch):
    calls: list[str] = []
    original = toxresults.summarize

    def counting(relpath, data):
        calls.append(relpath)
        return original(relpath, data)

    monkeypatch.setattr(toxresults, "summarize", counting)
    return calls


def test_stored_results_are_summarised_once(make_app, summaries):
    client = release(make_app)
    for n in range(3):
        post(client, client.hrefs[0], {**REPORT, "run": n}, status=200)
    first = browse(client)
    assert len(summaries) == 3
    assert browse(client) == first
    assert len(summaries) == 3
