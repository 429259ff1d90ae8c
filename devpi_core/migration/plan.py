"""Checking a dump against the target server before anything is written.

Turns the dump's users and index configurations into the records devpi-core stores, with
every problem reported as a :class:`~devpi_core.migration.dump.DumpError` naming the item:
unknown index types, values a key does not accept, invalid project names or versions, files
whose version the dump does not know. Keys devpi-core does not know (a devpi-server plugin's)
are kept as they are, as ``devpi-import`` keeps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from devpi_core.errors import DevpiError
from devpi_core.migration.dump import DumpError
from devpi_core.model.ixconfig import coerce
from devpi_core.model.names import check_project, check_version
from devpi_core.pwhashes import legacy_pwhash

if TYPE_CHECKING:
    from devpi_core.migration.dump import Dump, DumpFile, DumpIndex
    from devpi_core.model.indexes import Indexes

# what devpi-import sets for users the dump gives no creation time
EPOCH = "1970-01-01T00:00:00Z"
_NOT_STORED = ("username", "indexes", "pwhash", "pwsalt", "password")


@dataclass
class ProjectPlan:
    """One project of an index: display name, ``{version: verdata}`` and its files."""

    name: str
    display: str
    versions: dict[str, dict[str, Any]]
    files: list[DumpFile] = field(default_factory=list)


@dataclass
class IndexPlan:
    """One index: the configuration to store and its projects (empty for mirrors)."""

    fullname: str
    config: dict[str, Any]
    projects: dict[str, ProjectPlan]
    skipped_files: int = 0


def user_record(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The stored record of a dump's user: public keys and custom ones, and the hash."""
    record = {k: v for k, v in data.items() if k not in _NOT_STORED and v is not None}
    if name != "root":
        record.setdefault("created", EPOCH)
    pwhash, salt = data.get("pwhash"), data.get("pwsalt")
    if isinstance(pwhash, str) and pwhash:
        record["pwhash"] = legacy_pwhash(str(salt), pwhash) if salt else pwhash
    return record


def index_config(indexes: Indexes, index: DumpIndex) -> dict[str, Any]:
    """The configuration to store: known keys checked and coerced, defaults filled in."""
    try:
        keys = indexes.keys_for(index.type)
    except DevpiError as exc:
        raise DumpError(f"index {index.fullname}: {exc.message}") from None
    config: dict[str, Any] = {"type": index.type}
    for spec in keys.values():
        if spec.default is not None:
            default = spec.default
            config[spec.name] = list(default) if isinstance(default, (list, tuple)) else default
    computed = indexes.types[index.type].defaults  # the owner's acl_upload for a stage
    if computed is not None:
        config.update(computed(indexes.env, index.fullname.split("/", 1)[0]))
    for key, value in index.config.items():
        if key == "type" or value is None:
            continue
        if key not in keys:
            config[key] = value  # a devpi-server plugin's key: kept, as devpi-import does
            continue
        try:
            config[key] = coerce(keys[key], value)
        except DevpiError as exc:
            raise DumpError(f"index {index.fullname}: {exc.message}") from None
    return config


def plan_index(
    indexes: Indexes, index: DumpIndex, *, is_mirror: bool, include_mirrored: bool = False
) -> IndexPlan:
    """Check one index and group its files by project; a mirror's files only with
    ``include_mirrored`` (else they are counted as skipped)."""
    plan = IndexPlan(index.fullname, index_config(indexes, index), {})
    if is_mirror and not include_mirrored:
        # mirrored files are a cache: devpi-export leaves them out unless asked to
        plan.skipped_files = len(index.files)
        return plan
    for name, versions in index.projects.items():
        where = f"index {index.fullname}: project {name!r}"
        try:
            project = check_project(name)
            for version in versions:
                check_version(version)
        except DevpiError as exc:
            raise DumpError(f"{where}: {exc.message}") from None
        display = next((str(v["name"]) for v in versions.values() if v.get("name")), name)
        plan.projects[project] = ProjectPlan(project, display, {
            version: {**verdata, "version": verdata.get("version") or version}
            for version, verdata in versions.items()
        })
    for dumpfile in index.files:
        _add_file(plan, index.fullname, dumpfile)
    if is_mirror:  # devpi-export may list every project the mirror knows: keep cached ones
        plan.projects = {name: p for name, p in plan.projects.items() if p.files}
    return plan


def _add_file(plan: IndexPlan, fullname: str, dumpfile: DumpFile) -> None:
    where = f"index {fullname}: file {dumpfile.path}"
    try:
        project = check_project(dumpfile.project)
        check_version(dumpfile.version)
    except DevpiError as exc:
        raise DumpError(f"{where}: {exc.message}") from None
    target = plan.projects.setdefault(
        project, ProjectPlan(project, dumpfile.project, {})
    )
    target.files.append(dumpfile)


def plan_dump(indexes: Indexes, dump: Dump, *, include_mirrored: bool = False) -> list[IndexPlan]:
    """Every index of ``dump`` checked, bases before the indexes that use them."""
    plans = []
    for index in dump.indexes.values():
        spec = indexes.types.get(index.type)
        plans.append(plan_index(indexes, index, is_mirror=spec is not None and spec.is_mirror,
                                include_mirrored=include_mirrored))
    return plans
