"""The pages of a cached wheel's requirements are fetched before the installer asks."""

from __future__ import annotations

import io
import zipfile

from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core_mirror.prefetch import requirement_names, wheel_metadata
from devpi_core_mirror.service import MirrorService
from devpi_core_mirror.tests.conftest import wheel

METADATA = """Metadata-Version: 2.1
Name: app
Version: 1.0
Requires-Dist: dep-one>=1
Requires-Dist: Dep_Two ; python_version >= "3"
Requires-Dist: dep-one[speed]
Requires-Dist: extra-only ; extra == "fast"
Requires-Dist: ancient ; python_version < "2"
Requires-Dist: !!not a requirement

a description that mentions Requires-Dist: nothing
"""


def test_requirement_names_without_extras_for_this_environment():
    assert requirement_names(METADATA) == ["dep-one", "dep-two"]
    assert requirement_names("Metadata-Version: 2.1\nName: x\n") == []


def test_wheel_metadata_is_the_one_dist_info_metadata():
    dist = make_wheel(DistSpec("app", "1.0", requires_dist=["dep-one"]))
    text = wheel_metadata(io.BytesIO(dist.content))
    assert text is not None
    assert "Requires-Dist: dep-one" in text
    assert wheel_metadata(io.BytesIO(b"not a zip")) is None
    two = io.BytesIO()
    with zipfile.ZipFile(two, "w") as zf:
        zf.writestr("a-1.dist-info/METADATA", "Name: a\n")
        zf.writestr("b-1.dist-info/METADATA", "Name: b\n")
    assert wheel_metadata(two) is None


def _app_with_dependencies(upstream):
    upstream.add(
        "app", wheel("app", "1.0", requires_dist=["dep-one>=1", "optional ; extra == 'x'"])
    )
    upstream.add("dep-one", wheel("dep-one", "1.0"))
    upstream.add("optional", wheel("optional", "1.0"))


def _settled(mirror):
    mirror.wait_cached()
    assert mirror.registry[MirrorService].prefetches.flush(timeout=10)


def test_a_cached_wheel_brings_its_requirements_pages(mirror):
    _app_with_dependencies(mirror.upstream)
    assert mirror.download("app", "app-1.0-py3-none-any.whl").status_int == 200
    _settled(mirror)
    assert mirror.upstream.count("/simple/dep-one/") == 1
    assert mirror.upstream.count("/simple/optional/") == 0
    files = [f["filename"] for f in mirror.page("dep-one")["files"]]
    assert files == ["dep_one-1.0-py3-none-any.whl"]
    assert mirror.upstream.count("/simple/dep-one/") == 1  # the installer's request was a hit


def test_prefetching_can_be_turned_off(make_mirror, fake_upstream):
    mirror = make_mirror({"plugins": {"mirror": {"prefetch_dependencies": False}}})
    _app_with_dependencies(fake_upstream)
    assert mirror.download("app", "app-1.0-py3-none-any.whl").status_int == 200
    _settled(mirror)
    assert fake_upstream.count("/simple/dep-one/") == 0


def test_requirements_already_cached_are_not_asked_again(mirror):
    _app_with_dependencies(mirror.upstream)
    mirror.page("dep-one")
    assert mirror.download("app", "app-1.0-py3-none-any.whl").status_int == 200
    _settled(mirror)
    assert mirror.upstream.count("/simple/dep-one/") == 1


def test_a_requirement_missing_upstream_costs_nothing_but_its_404(mirror):
    mirror.upstream.add("app", wheel("app", "1.0", requires_dist=["nowhere-to-be-found"]))
    assert mirror.download("app", "app-1.0-py3-none-any.whl").status_int == 200
    _settled(mirror)
    assert mirror.upstream.count("/simple/nowhere-to-be-found/") == 1
    mirror.page("nowhere-to-be-found", status=404)
    assert mirror.upstream.count("/simple/nowhere-to-be-found/") == 1  # remembered as missing
