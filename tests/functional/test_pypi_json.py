"""PyPI's JSON API (``/<user>/<index>/pypi/<project>[/<version>]/json``) in the shape its
documentation gives and the fields tools read: dependency updaters (releases, upload times,
yanks, Requires-Python, project URLs), auditors (info.version, urls, digests,
vulnerabilities) and scripts (info)."""

from __future__ import annotations

import re

import pytest

from devpi_core.testing.dists import DistSpec, make_sdist, make_wheel

INFO_KEYS = {
    "author", "author_email", "bugtrack_url", "classifiers", "description",
    "description_content_type", "docs_url", "download_url", "downloads", "home_page",
    "keywords", "license", "maintainer", "maintainer_email", "name", "package_url", "platform",
    "project_url", "project_urls", "release_url", "requires_dist", "requires_python", "summary",
    "version", "yanked", "yanked_reason",
}
FILE_KEYS = {
    "comment_text", "digests", "downloads", "filename", "has_sig", "md5_digest", "packagetype",
    "python_version", "requires_python", "size", "upload_time", "upload_time_iso_8601", "url",
    "yanked", "yanked_reason",
}
SPEC_1 = DistSpec(
    "My.Pkg", "1.0", summary="does things", requires_python=">=3.9",
    requires_dist=["requests>=2", 'tomli; python_version < "3.11"', "rich; extra == 'cli'"],
    extra_metadata=("Project-URL: Source, https://git.example/my-pkg",
                    "Project-URL: Issue Tracker, https://git.example/my-pkg/issues",
                    "Classifier: Programming Language :: Python :: 3",
                    "Provides-Extra: cli"),
)


@pytest.fixture
def shop(client):
    """alice/dev: my-pkg 1.0 (wheel + sdist), 1.1 (yanked), 2.0rc1; alice/prod inherits."""
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.create_index("alice/prod", bases="alice/dev")
    client.upload("alice/dev", make_wheel(SPEC_1), name="My.Pkg")
    client.upload("alice/dev", make_sdist(SPEC_1), name="My.Pkg")
    client.upload("alice/dev", make_wheel(DistSpec("My.Pkg", "1.1")))
    client.request("PATCH", "/alice/dev/my-pkg/1.1", {"yanked": "broken"}, status=200)
    client.upload("alice/dev", make_wheel(DistSpec("My.Pkg", "2.0rc1")))
    return client


def test_project_json_has_pypis_shape(shop):
    body = shop.get_json("/alice/prod/pypi/My.Pkg/json")
    assert set(body) == {"info", "last_serial", "project-status", "releases", "urls",
                         "vulnerabilities"}
    assert body["project-status"] == {"status": "active"}
    assert set(body["info"]) >= INFO_KEYS
    assert isinstance(body["last_serial"], int)
    assert body["vulnerabilities"] == []
    assert list(body["releases"]) == ["1.0", "1.1", "2.0rc1"]
    for files in body["releases"].values():
        for entry in files:
            assert set(entry) >= FILE_KEYS


def test_info_describes_the_latest_final_release_not_yanked(shop):
    info = shop.get_json("/alice/dev/pypi/my-pkg/json")["info"]
    assert info["version"] == "1.0"  # 2.0rc1 is a pre-release, 1.1 is yanked
    assert info["name"] == "My.Pkg"
    assert info["summary"] == "does things"
    assert info["requires_python"] == ">=3.9"
    assert info["requires_dist"] == ["requests>=2", 'tomli; python_version < "3.11"',
                                     "rich; extra == 'cli'"]
    assert info["project_urls"] == {"Source": "https://git.example/my-pkg",
                                    "Issue Tracker": "https://git.example/my-pkg/issues"}
    assert info["classifiers"] == ["Programming Language :: Python :: 3"]
    assert info["release_url"] == "http://localhost/alice/dev/my-pkg/1.0/"
    assert info["yanked"] is False


def test_files_are_absolute_with_digests_times_and_types(shop):
    body = shop.get_json("/alice/dev/pypi/my-pkg/json")
    urls = {entry["filename"]: entry for entry in body["urls"]}
    assert set(urls) == {"my_pkg-1.0-py3-none-any.whl", "my_pkg-1.0.tar.gz"}
    wheel, sdist = urls["my_pkg-1.0-py3-none-any.whl"], urls["my_pkg-1.0.tar.gz"]
    assert (wheel["packagetype"], wheel["python_version"]) == ("bdist_wheel", "py3")
    assert (sdist["packagetype"], sdist["python_version"]) == ("sdist", "source")
    assert re.fullmatch(r"[0-9a-f]{64}", wheel["digests"]["sha256"])
    assert wheel["url"].startswith("http://localhost/alice/dev/+f/")
    assert wheel["url"].endswith("/my_pkg-1.0-py3-none-any.whl")
    assert wheel["size"] == len(shop.get(wheel["url"], Accept="*/*").body)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", wheel["upload_time"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", wheel["upload_time_iso_8601"])
    assert wheel["requires_python"] == ">=3.9"
    yanked = body["releases"]["1.1"][0]
    assert (yanked["yanked"], yanked["yanked_reason"]) == (True, "broken")


def test_version_json(shop):
    body = shop.get_json("/alice/prod/pypi/my-pkg/1.1/json")
    assert set(body) == {"info", "last_serial", "project-status", "urls", "vulnerabilities"}
    assert body["info"]["version"] == "1.1"
    assert (body["info"]["yanked"], body["info"]["yanked_reason"]) == (True, "broken")
    assert [entry["filename"] for entry in body["urls"]] == ["my_pkg-1.1-py3-none-any.whl"]
    shop.get("/alice/dev/pypi/my-pkg/9.9/json", status=404)
    assert "no project" in shop.get("/alice/dev/pypi/nothing/json", status=404).json["message"]


def test_acl_read_refuses_as_the_simple_pages_do(shop):
    shop.modify_index("alice/dev", ["acl_read=alice"])
    shop.logout()
    for path in ("/alice/dev/pypi/my-pkg/json", "/alice/dev/pypi/my-pkg/1.0/json"):
        simple = shop.get("/alice/dev/+simple/my-pkg/", status="*")
        refused = shop.get(path, status="*")
        assert refused.status_int == simple.status_int == 401
        assert refused.json["message"]
    # alice/prod may be read, but its base may not: its JSON lists nothing of alice/dev
    shop.get("/alice/prod/pypi/my-pkg/json", status=404)
    shop.login("alice")
    assert shop.get_json("/alice/dev/pypi/my-pkg/json")["info"]["version"] == "1.0"
