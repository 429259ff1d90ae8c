"""``devpi-core import``/``export`` in-process on small hand-made dumps (issue 12).

Each bad dump stops the import with a message naming the item and leaves the target as it
was (no users, no indexes, no blobs); ``--dry-run`` writes nothing; devpi-server's salted sha256
hashes log in and are replaced; an export of devpi-core's own additions (yanked, ``acl_read``,
PEP 700 upload times) comes back the same through an import.
"""

from __future__ import annotations

import hashlib
import json
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import pytest
import webtest
from devpi_core_fsstore.blob_store import FileBlobStore

from devpi_core import services
from devpi_core.app import make_app as build_app
from devpi_core.blobs import BlobIngest
from devpi_core.bootstrap import load_plugins, open_core
from devpi_core.cli import main
from devpi_core.config import load_raw
from devpi_core.serverdir import open_serverdir
from devpi_core.testing.dists import DistSpec, make_doczip, make_wheel
from devpi_core.testing.plugin import server_config, write_config

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from devpi_core.bootstrap import Core

WHEEL = make_wheel(DistSpec("pkg", "1.0", requires_python=">=3.8"))
DOCS = make_doczip()
SALT = "s4lt"
LEGACY = hashlib.sha256(f"{SALT}old-password".encode()).hexdigest()


def _filedesc(rel: str, relpath: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "type": rel, "projectname": "pkg", "version": "1.0", "relpath": relpath,
        "entrymapping": {"hashes": {"sha256": hashlib.sha256(data).hexdigest()},
                         "last_modified": formatdate(1700000000, usegmt=True)},
        "log": [{"what": "upload", "who": "alice", "when": [2023, 11, 14, 22, 13, 20],
                 "dst": "alice/dev"}],
        **extra,
    }


def write_dump(root: Path) -> dict[str, Any]:
    """A valid version-2 dump: root, alice (legacy hash), alice/dev with a wheel and docs."""
    (root / "alice/dev/pkg/1.0").mkdir(parents=True)
    (root / "alice/dev/pkg/1.0" / WHEEL.filename).write_bytes(WHEEL.content)
    (root / "alice/dev/pkg-1.0.doc.zip").write_bytes(DOCS)
    data = {
        "dumpversion": "2",
        "users": {
            "root": {"username": "root", "pwhash": LEGACY, "pwsalt": SALT},
            "alice": {"username": "alice", "pwhash": LEGACY, "pwsalt": SALT,
                      "email": "\u00e5lice@example.org"},
        },
        "indexes": {
            "alice/base": {"indexconfig": {"type": "stage", "volatile": False},
                           "projects": {}, "files": []},
            "alice/dev": {
                "indexconfig": {"type": "stage", "bases": ["alice/base"], "volatile": True,
                                "acl_upload": ["alice"], "pypi_whitelist": ["pkg"],
                                "x_plugin_key": "kept"},
                "projects": {"pkg": {"1.0": {"name": "pkg", "version": "1.0",
                                             "requires_python": ">=3.8"}}},
                "files": [
                    _filedesc("releasefile", f"alice/dev/pkg/1.0/{WHEEL.filename}",
                              WHEEL.content),
                    _filedesc("doczip", "alice/dev/pkg-1.0.doc.zip", DOCS),
                ],
            },
        },
    }
    (root / "dataindex.json").write_text(json.dumps(data))
    return data


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    root = tmp_path / "dump"
    write_dump(root)
    return root


@pytest.fixture
def target(tmp_path: Path) -> tuple[str, ...]:
    config = write_config(tmp_path / "config.yml", server_config())
    return ("--serverdir", str(tmp_path / "serverdir"), "--config", str(config))


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def opened(target: tuple[str, ...]) -> Iterator[Core]:
    plugins, settings = load_plugins(load_raw(target[3]))
    settings = settings.with_overrides(serverdir=target[1])
    core = open_core(plugins, settings, open_serverdir(target[1]))
    try:
        yield core
    finally:
        core.close()


def contents(target: tuple[str, ...]) -> tuple[list[str], list[str], list[str]]:
    for core in opened(target):
        with core.store.read() as tx:
            indexes = list(tx.keys("index:"))
        return core.users.names(), indexes, list(core.blobs.iter_blobs())
    raise AssertionError


def _edit(change: Callable[[dict[str, Any], Path], None]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        data = json.loads((root / "dataindex.json").read_text())
        change(data, root)
        (root / "dataindex.json").write_text(json.dumps(data))
    return apply


def _dev(data: dict[str, Any]) -> dict[str, Any]:
    return data["indexes"]["alice/dev"]


BAD_DUMPS: dict[str, tuple[Callable[[Path], None], str]] = {
    "unknown version": (_edit(lambda d, _r: d.update(dumpversion="7")),
                        "unknown dump version '7'"),
    "malformed json": (lambda r: (r / "dataindex.json").write_text('{"users": '),
                       "dataindex.json: malformed JSON"),
    "missing file": (lambda r: (r / "alice/dev/pkg-1.0.doc.zip").unlink(),
                     "file alice/dev/pkg-1.0.doc.zip: missing from the dump"),
    "wrong hash": (lambda r: (r / "alice/dev/pkg-1.0.doc.zip").write_bytes(b"changed"),
                   "file alice/dev/pkg-1.0.doc.zip: sha256 mismatch"),
    "missing base": (_edit(lambda d, _r: _dev(d)["indexconfig"].update(bases=["alice/nope"])),
                     "index alice/dev: base index 'alice/nope' is not in the dump"),
    "invalid user name": (_edit(lambda d, _r: d["users"].update({"bad name": {}})),
                          "user 'bad name': invalid user name"),
    "invalid project name": (
        _edit(lambda d, _r: _dev(d)["projects"].update({"bad/name": {"1": {}}})),
        "index alice/dev: project 'bad/name': invalid project name"),
    "unknown index type": (_edit(lambda d, _r: _dev(d)["indexconfig"].update(type="weird")),
                           "index alice/dev: unknown index type 'weird'"),
    "bad config value": (_edit(lambda d, _r: _dev(d)["indexconfig"].update(volatile="maybe")),
                         "index alice/dev: volatile: expected true or false"),
    "path outside": (_edit(lambda d, _r: _dev(d)["files"][0].update(relpath="../x.whl")),
                     "path leaves the dump directory"),
}


@pytest.mark.parametrize("name", sorted(BAD_DUMPS))
def test_bad_dump_names_the_item_and_leaves_nothing(name, dump, target, capsys):
    spoil, message = BAD_DUMPS[name]
    spoil(dump)
    code, _out, err = run(capsys, "import", *target, str(dump))
    assert code == 1
    assert "import stopped, nothing was imported" in err
    assert message in err
    assert contents(target) == ([], [], [])


def test_failure_in_the_metadata_phase_removes_the_stored_blobs(dump, target, capsys):
    # a tox result for a release file the dump lacks is found only when the project is written
    data = json.loads((dump / "dataindex.json").read_text())
    (dump / "alice/dev/pkg/x").mkdir()
    (dump / "alice/dev/pkg/x/t.json").write_bytes(b"{}")
    _dev(data)["files"].append(_filedesc("toxresult", "alice/dev/pkg/x/t.json", b"{}",
                                         for_entrypath="alice/dev/+f/123/4/nothere.whl"))
    (dump / "dataindex.json").write_text(json.dumps(data))
    code, _out, err = run(capsys, "import", *target, str(dump))
    assert code == 1
    assert "release file nothere.whl is not in the dump" in err
    assert contents(target) == ([], [], [])


def test_dry_run_checks_everything_and_writes_nothing(dump, target, capsys):
    code, out, err = run(capsys, "import", "--dry-run", *target, str(dump))
    assert code == 0, err
    assert "checked (dry run, nothing written): 2 users, 2 indexes, 1 projects, 2 files" in out
    assert contents(target) == ([], [], [])
    (dump / "alice/dev/pkg-1.0.doc.zip").write_bytes(b"changed")
    code, _out, err = run(capsys, "import", "--dry-run", *target, str(dump))
    assert code == 1
    assert "sha256 mismatch" in err


def test_import_restores_users_indexes_files_and_logs(dump, target, capsys):
    code, out, err = run(capsys, "import", *target, str(dump))
    assert code == 0, err
    assert "imported 2 users, 2 indexes, 1 projects, 2 files" in out
    for core in opened(target):
        alice = core.users.require("alice")
        assert alice["email"] == "\u00e5lice@example.org"
        assert alice["created"] == "1970-01-01T00:00:00Z"
        config = core.indexes.require("alice/dev").config
        assert config["mirror_whitelist"] == ["pkg"]  # renamed from pypi_whitelist
        assert config["x_plugin_key"] == "kept"
        assert config["bases"] == ["alice/base"]
        stage = core.indexes.type_of(core.indexes.require("alice/dev"))
        verdata = stage.version("pkg", "1.0")
        assert verdata is not None
        links = {link["relpath"].rsplit("/", 1)[1]: link for link in verdata["+links"]}
        assert links[WHEEL.filename]["log"][0]["who"] == "alice"
        assert links["pkg-1.0.doc.zip"]["rel"] == "doczip"
        ref = stage.get_file(links[WHEEL.filename]["relpath"] + ".metadata")
        assert ref is not None  # the wheel's METADATA is served (PEP 658)
        with core.blobs.open(WHEEL.sha256) as f:
            assert f.read() == WHEEL.content
        assert stage.links("pkg")[0].requires_python == ">=3.8"


def test_legacy_hash_logs_in_and_is_replaced(dump, target, capsys):
    assert run(capsys, "import", *target, str(dump))[0] == 0
    for core in opened(target):
        old = core.users.require("alice")["pwhash"]
        assert old.startswith("$devpi-sha256$")
        assert not core.users.hasher.verify("wrong", old)
        assert core.users.hasher.verify("old-password", old)
        assert core.users.hasher.needs_update(old)
        core.users.rehash("alice", old, "old-password")
        new = core.users.require("alice")["pwhash"]
        assert new.startswith("$argon2id$")
        assert core.users.hasher.verify("old-password", new)


def test_export_keeps_devpi_core_additions(dump, target, tmp_path, capsys):
    assert run(capsys, "import", *target, str(dump))[0] == 0
    for core in opened(target):
        core.indexes.modify("alice/dev", {"acl_read": ["alice"]})
        stage = core.indexes.type_of(core.indexes.require("alice/dev"))
        stage.set_yanked("pkg", "1.0", "broken")  # type: ignore[attr-defined]
        upload_time = stage.links("pkg")[0].upload_time
    code, out, err = run(capsys, "export", *target, str(tmp_path / "export"))
    assert code == 0, err
    assert "2 users, 2 indexes, 1 projects, 2 files" in out
    exported = json.loads((tmp_path / "export/dataindex.json").read_text())
    assert exported["users"]["alice"]["pwsalt"] == SALT  # legacy hashes go back as they came
    assert exported["users"]["alice"]["pwhash"] == LEGACY
    again = ("--serverdir", str(tmp_path / "again"), "--config", target[3])
    code, _out, err = run(capsys, "import", *again, str(tmp_path / "export"))
    assert code == 0, err
    for core in opened(again):
        record = core.indexes.require("alice/dev")
        assert record.config["acl_read"] == ["alice"]
        stage = core.indexes.type_of(record)
        link = stage.links("pkg")[0]
        assert link.yanked == "broken"
        assert link.upload_time == upload_time
    code, _out, err = run(capsys, "export", *target, str(tmp_path / "export"))
    assert code == 1
    assert "must not exist or be empty" in err


def test_dump_version_1_is_read(dump, target, capsys):
    data = json.loads((dump / "dataindex.json").read_text())
    data["dumpversion"] = "1"
    for entry in _dev(data)["files"]:
        del entry["version"]
        mapping = entry["entrymapping"]
        mapping["hash_spec"] = "sha256=" + mapping.pop("hashes")["sha256"]
    (dump / "dataindex.json").write_text(json.dumps(data))
    code, out, err = run(capsys, "import", *target, str(dump))
    assert code == 0, err
    assert "2 files" in out


def test_import_into_the_default_root_pypi_server(dump, target, capsys):
    assert run(capsys, "init", *target)[0] == 0
    code, _out, err = run(capsys, "import", *target, str(dump))
    assert code == 0, err
    users, indexes, _blobs = contents(target)
    assert users == ["alice", "root"]
    assert "index:root/pypi" in indexes  # the dump has none: the default mirror stays


def test_blob_store_batch_defers_fsyncs_to_its_end(tmp_path, monkeypatch):
    store = FileBlobStore(str(tmp_path / "blobs"))
    calls: list[str] = []
    monkeypatch.setattr("os.fsync", lambda fd: calls.append("fsync"))
    monkeypatch.setattr("os.sync", lambda: calls.append("sync"))
    with store.batch():
        assert store.deferred_sync
        with BlobIngest(store, str(tmp_path)) as blob:
            blob.write(b"data")
            digest = blob.commit()
        assert calls == []
    assert calls == ["sync"]
    assert not store.deferred_sync
    with store.open(digest) as f:
        assert f.read() == b"data"
    with BlobIngest(store, str(tmp_path)) as blob:
        blob.write(b"more")
        blob.commit()
    assert calls == ["sync", "fsync", "fsync"]  # outside a batch: the file and its directory


# -- mirrored files (--include-mirrored-files) -----------------------------------------------
MIRRORED = make_wheel(DistSpec("mirrored", "2.0", requires_python=">=3.9"))


def _add_mirror(data: dict[str, Any], root: Path, upstream: str) -> None:
    """root/pypi as devpi-export --include-mirrored-files writes it: one cached wheel."""
    relpath = f"root/pypi/mirrored/2.0/{MIRRORED.filename}"
    (root / relpath).parent.mkdir(parents=True)
    (root / relpath).write_bytes(MIRRORED.content)
    data["indexes"]["root/pypi"] = {
        "indexconfig": {"type": "mirror", "volatile": False, "mirror_url": upstream},
        "projects": {"mirrored": {"2.0": {"name": "mirrored", "version": "2.0",
                                          "requires_python": ">=3.9"}},
                     "never-fetched": {}},
        "files": [{
            "type": "releasefile", "projectname": "mirrored", "version": "2.0",
            "relpath": relpath, "log": [],
            "entrymapping": {
                "hashes": {"sha256": MIRRORED.sha256},
                "last_modified": formatdate(1700000000, usegmt=True),
                "url": f"{upstream}../files/{MIRRORED.filename}",
            },
        }],
    }


@pytest.fixture
def down_upstream(fake_upstream: Any) -> str:
    """The URL of an upstream that no longer answers (connections are refused)."""
    url = str(fake_upstream.url)
    fake_upstream.stop()
    return url


def served(target: tuple[str, ...]) -> Iterator[Any]:
    """A WebTest app on the imported server directory."""
    plugins, settings = load_plugins(load_raw(target[3]))
    settings = settings.with_overrides(serverdir=target[1])
    app = build_app(plugins, settings, open_serverdir(target[1]))
    try:
        yield webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    finally:
        services.shutdown(app.registry)


def _check_mirrored_served(target: tuple[str, ...]) -> None:
    for app in served(target):
        page = app.get("/root/pypi/+simple/mirrored/", headers={"Accept": "text/html"})
        assert MIRRORED.filename in page.text  # the imported page, while the upstream is down
        assert 'data-requires-python="&gt;=3.9"' in page.text
        href = page.html.find("a")["href"].split("#")[0]
        got = app.get(href.replace("../../", "/root/pypi/", 1) if href.startswith("../")
                      else href)
        assert got.body == MIRRORED.content


def test_mirrored_files_are_imported_and_served_without_the_upstream(
    dump, target, down_upstream, capsys
):
    _edit(lambda d, r: _add_mirror(d, r, down_upstream))(dump)
    code, out, err = run(capsys, "import", "--include-mirrored-files", *target, str(dump))
    assert code == 0, err
    assert "imported 2 users, 3 indexes, 2 projects, 3 files" in out
    assert "skipped" not in out
    _check_mirrored_served(target)


def test_mirrored_files_are_skipped_and_counted_without_the_flag(
    dump, target, down_upstream, capsys
):
    _edit(lambda d, r: _add_mirror(d, r, down_upstream))(dump)
    code, out, err = run(capsys, "import", *target, str(dump))
    assert code == 0, err
    assert "2 files" in out
    assert "1 mirrored files skipped" in out
    assert MIRRORED.sha256 not in contents(target)[2]


def test_a_mirrored_file_with_the_wrong_hash_leaves_nothing(dump, target, down_upstream, capsys):
    _edit(lambda d, r: _add_mirror(d, r, down_upstream))(dump)
    (dump / f"root/pypi/mirrored/2.0/{MIRRORED.filename}").write_bytes(b"tampered")
    code, _out, err = run(capsys, "import", "--include-mirrored-files", *target, str(dump))
    assert code == 1
    assert f"file root/pypi/mirrored/2.0/{MIRRORED.filename}: sha256 mismatch" in err
    assert contents(target) == ([], [], [])


def test_mirrored_files_go_out_and_back_in_devpi_export_format(
    dump, target, down_upstream, tmp_path, capsys
):
    _edit(lambda d, r: _add_mirror(d, r, down_upstream))(dump)
    assert run(capsys, "import", "--include-mirrored-files", *target, str(dump))[0] == 0
    code, out, err = run(capsys, "export", *target, str(tmp_path / "plain"))
    assert code == 0, err
    plain = json.loads((tmp_path / "plain/dataindex.json").read_text())
    assert "files" not in plain["indexes"]["root/pypi"]
    code, out, err = run(capsys, "export", "--include-mirrored-files", *target,
                         str(tmp_path / "export"))
    assert code == 0, err
    assert "3 files" in out
    exported = json.loads((tmp_path / "export/dataindex.json").read_text())
    mirror = exported["indexes"]["root/pypi"]
    assert mirror["projects"] == {"mirrored": {"2.0": {
        "name": "mirrored", "version": "2.0", "requires_python": ">=3.9"}}}
    (filedesc,) = mirror["files"]
    assert filedesc["relpath"] == f"root/pypi/mirrored/2.0/{MIRRORED.filename}"
    mapping = filedesc["entrymapping"]
    assert mapping["url"] == f"{down_upstream}../files/{MIRRORED.filename}"
    assert mapping["hashes"]["sha256"] == MIRRORED.sha256
    assert mapping["last_modified"]  # devpi-import requires it for mirrored files
    assert (tmp_path / "export" / filedesc["relpath"]).read_bytes() == MIRRORED.content
    again = ("--serverdir", str(tmp_path / "again"), "--config", target[3])
    code, _out, err = run(capsys, "import", "--include-mirrored-files", *again,
                          str(tmp_path / "export"))
    assert code == 0, err
    _check_mirrored_served(again)


def test_import_does_not_ask_the_blob_store_about_blobs_it_stored(dump, target, capsys,
                                                                   monkeypatch):
    # on S3 each question is a HEAD request: the import stored these blobs itself
    asked = []
    exists = FileBlobStore.exists

    def counted(self: FileBlobStore, sha256: str) -> bool:
        asked.append(sha256)
        return exists(self, sha256)

    monkeypatch.setattr(FileBlobStore, "exists", counted)
    code, out, err = run(capsys, "import", *target, str(dump))
    assert code == 0, err
    assert "imported 2 users, 2 indexes, 1 projects, 2 files" in out
    assert asked == []
    for core in opened(target):  # the references are written all the same
        with core.store.read() as tx:
            assert any(key.startswith(f"blobref:{WHEEL.sha256}:") for key in tx.keys("blobref:"))
