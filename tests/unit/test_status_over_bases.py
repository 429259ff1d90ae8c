"""PEP 792 over bases: which indexes' files a page withholds, and the status it shows."""

from __future__ import annotations

from devpi_core.records import ProjectStatus, status_over_bases

QUARANTINED = ProjectStatus("quarantined", "malware")
ARCHIVED = ProjectStatus("archived")


def test_a_base_quarantine_withholds_that_base_only():
    over = status_over_bases("alice/dev", [("alice/dev", None), ("root/pypi", QUARANTINED)])
    assert over.withheld == {"root/pypi"}
    assert over.status.status == "active"  # what alice/dev still serves is alice's
    over = status_over_bases("alice/dev", [("alice/dev", ARCHIVED), ("root/pypi", QUARANTINED)])
    assert (over.status, over.withheld) == (ARCHIVED, {"root/pypi"})


def test_own_quarantine_or_nothing_left_withholds_everything():
    over = status_over_bases("alice/dev", [("alice/dev", QUARANTINED), ("root/pypi", None)])
    assert (over.status, over.withheld) == (QUARANTINED, {"alice/dev", "root/pypi"})
    # alice/prod has no files of its own: only the quarantined base contributes
    over = status_over_bases("alice/prod", [("alice/dev", QUARANTINED)])
    assert (over.status, over.withheld) == (QUARANTINED, {"alice/dev"})
    assert status_over_bases("alice/dev", []).withheld == frozenset()
