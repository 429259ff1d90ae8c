"""The import rules that make every plugin independently replaceable, checked with ``ast``.

- Core (``devpi_core``) never imports a plugin, not even by name: plugins come in through the
  ``devpi_core`` entry-point group only, the bundled ones exactly like third-party ones.
- A plugin imports its own package, third-party libraries and devpi-core's public API, never
  another plugin: plugins cooperate through hooks and services.
- Every hook in ``hookspecs.py`` is documented and implemented by a bundled plugin or a test
  plugin (no placeholders).

devpi-core's public API is the explicit list ``PUBLIC`` below; a module outside it may change
in any release. The list is what a plugin needs to implement each kind of hook:

================================  ==============================================================
``devpi_core``                    ``hookimpl`` and ``__version__``
``devpi_core.errors``             the exceptions a plugin raises to answer 4xx/5xx
``devpi_core.records``            the values hooks receive and return (identities, links, events)
``devpi_core.specs``              the registration dataclasses returned by registration hooks
``devpi_core.interfaces``         the ABCs of services: stores, hashers, mirror sources, policies
``devpi_core.indextypes``         the ABC of index types (the data they serve and the questions of
                                  their rules), what it works with (env, file refs), merging
``devpi_core.services``           typed lookups of the running server's services
``devpi_core.web``                view helpers: devpi's JSON envelope, request parsing, content
                                  negotiation, ACL checks, contributing indexes
``devpi_core.blobs``              streaming content into the blob store (temp file, hash, fsync)
``devpi_core.config``             ``Settings`` (a hook argument) and size parsing for settings
``devpi_core.logsetup``           the current request's id and log-safe paths (for error pages)
``devpi_core.outbound``           the hosts the server may connect to (``server.outbound_allow``)
``devpi_core.outbound_session``   a ``requests`` session whose every connection obeys that policy
``devpi_core.model.names``        PEP 503 names, PEP 440 version order: one definition for all
``devpi_core.model.acl``          ACL principals such as ``:ANONYMOUS:`` for index key defaults
``devpi_core.model.blobrefs``     reference counts of blobs shared between indexes
``devpi_core.model.indexes``      index keys and ``user/index`` parsing for index types
``devpi_core.testing.*``          fixtures, contracts and generated dists, for plugins' tests only
================================  ==============================================================

Everything else (app, bootstrap, cli, plugins, serving, tweens, security, simple pages, views,
model.users, model.ixconfig, ...) is core's own business.
"""

from __future__ import annotations

import ast
import configparser
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from devpi_core import hookspecs

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "devpi_core"
PLUGINS = ROOT / "plugins"
EXAMPLE_PLUGIN = ROOT / "tests" / "e2e" / "data" / "devpi-core-hello" / "devpi_core_hello"
GATE_PLUGIN = (
    ROOT / "tests" / "e2e" / "data" / "devpi-core-license-gate" / "devpi_core_license_gate"
)
CONSTRAINED_PLUGIN = (
    ROOT / "tests" / "e2e" / "data" / "devpi-core-constrained" / "devpi_core_constrained"
)
# third-party plugins written against the public API only (docs/plugins.rst quotes them)
EXAMPLE_PLUGINS = (EXAMPLE_PLUGIN, GATE_PLUGIN, CONSTRAINED_PLUGIN)

PUBLIC = frozenset(
    {
        "devpi_core",
        "devpi_core.errors",
        "devpi_core.records",
        "devpi_core.specs",
        "devpi_core.interfaces",
        "devpi_core.indextypes",
        "devpi_core.services",
        "devpi_core.web",
        "devpi_core.blobs",
        "devpi_core.config",
        "devpi_core.logsetup",
        "devpi_core.outbound",
        "devpi_core.outbound_session",
        "devpi_core.search",
        "devpi_core.pwhashes",
        "devpi_core.model.names",
        "devpi_core.model.acl",
        "devpi_core.model.blobrefs",
        "devpi_core.model.indexes",
        "devpi_core.model.relpaths",
    }
)
TESTING = "devpi_core.testing"


@dataclass(frozen=True)
class Import:
    """One imported module, where it was imported."""

    module: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}: imports {self.module}"


def module_name(path: Path, package_root: Path) -> str:
    parts = list(path.relative_to(package_root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of devpi-core or of a plugin (on disk)."""
    parts = name.split(".")
    if parts[0] == "devpi_core":
        base = CORE.parent
    elif (PLUGINS / parts[0]).is_dir():
        base = PLUGINS
    elif parts[0] in {example.name for example in EXAMPLE_PLUGINS}:
        base = next(e.parent for e in EXAMPLE_PLUGINS if e.name == parts[0])
    else:
        return False
    path = base.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path, package_root: Path) -> Iterator[Import]:
    """Every module ``path`` imports, at any depth (function-level imports included)."""
    name = module_name(path, package_root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(alias.name, path, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                # ``from devpi_core import services`` imports the module devpi_core.services
                submodule = f"{source}.{alias.name}"
                yield Import(submodule if is_module(submodule) else source, path, node.lineno)


def python_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def plugin_packages() -> list[Path]:
    return sorted(p for p in PLUGINS.iterdir() if (p / "__init__.py").is_file())


def test_the_trees_are_where_the_test_looks():
    assert len(python_files(CORE)) > 30
    assert {p.name for p in plugin_packages()} >= {
        "devpi_core_fsstore",
        "devpi_core_passwd",
        "devpi_core_stages",
    }
    assert all((example / "__init__.py").is_file() for example in EXAMPLE_PLUGINS)
    checked = {package for _path, package in plugin_sources()}
    assert checked >= set(EXAMPLE_PLUGINS)


def test_public_modules_exist():
    assert [name for name in sorted(PUBLIC) if not is_module(name)] == []


def test_core_never_imports_a_plugin():
    plugin_names = {p.name for p in plugin_packages()} | {e.name for e in EXAMPLE_PLUGINS}
    found = [
        str(imp)
        for path in python_files(CORE)
        for imp in imports_of(path, CORE)
        if imp.module.split(".")[0].startswith("devpi_core_")
    ]
    # nor by name, e.g. importlib.import_module("devpi_core_fsstore")
    for path in python_files(CORE):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and (node.value.split(".")[0] in plugin_names)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: names {node.value}")
    assert found == []


def plugin_sources() -> Iterator[tuple[Path, Path]]:
    """``(file, package root)`` of every bundled plugin (tests included) and the examples."""
    for package in [*plugin_packages(), *EXAMPLE_PLUGINS]:
        for path in python_files(package):
            yield path, package


def violation(imp: Import, package: Path) -> str | None:
    top = imp.module.split(".")[0]
    in_tests = "tests" in imp.path.relative_to(package).parts
    if top == package.name:
        return None
    if top.startswith("devpi_core_"):
        return f"{imp} (another plugin: cooperate through hooks and services)"
    if top != "devpi_core":
        return None  # the standard library or a third-party package
    if imp.module == TESTING or imp.module.startswith(TESTING + "."):
        return None if in_tests else f"{imp} (test helpers are for tests only)"
    if imp.module not in PUBLIC:
        return f"{imp} (not public API; see PUBLIC in tests/test_architecture.py)"
    return None


def test_plugins_import_only_the_public_api_and_never_each_other():
    found = [
        problem
        for path, package in plugin_sources()
        for imp in imports_of(path, package)
        if (problem := violation(imp, package)) is not None
    ]
    assert found == []


@pytest.mark.parametrize(
    ("module", "where", "expected"),
    [
        ("devpi_core_stages.stage", "plugins/devpi_core_mirror/index.py", "another plugin"),
        ("devpi_core.app", "plugins/devpi_core_mirror/index.py", "not public API"),
        ("devpi_core.model.users", "plugins/devpi_core_mirror/index.py", "not public API"),
        ("devpi_core.testing.dists", "plugins/devpi_core_mirror/index.py", "tests only"),
        ("devpi_core.testing.dists", "plugins/devpi_core_mirror/tests/test_x.py", None),
        ("devpi_core.web", "plugins/devpi_core_mirror/index.py", None),
        ("devpi_core_mirror.cache", "plugins/devpi_core_mirror/index.py", None),
        ("requests", "plugins/devpi_core_mirror/index.py", None),
    ],
)
def test_the_rules_themselves(module, where, expected):
    problem = violation(Import(module, ROOT / where, 1), PLUGINS / "devpi_core_mirror")
    assert (problem is None) == (expected is None)
    if expected:
        assert expected in problem


def test_relative_and_from_imports_are_resolved(tmp_path):
    package = tmp_path / "devpi_core_x"
    (package / "sub").mkdir(parents=True)
    source = package / "sub" / "mod.py"
    source.write_text(
        "from .. import other\nfrom ..sibling import thing\nfrom devpi_core import web\n"
        "def f():\n    import devpi_core_y.z\n"
    )
    found = [imp.module for imp in imports_of(source, package)]
    assert found == ["devpi_core_x", "devpi_core_x.sibling", "devpi_core.web", "devpi_core_y.z"]


def setup_cfg() -> configparser.ConfigParser:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    return parser


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_bundled_plugins_are_registered_only_through_entry_points():
    cfg = setup_cfg()
    packages = listed(cfg["options"]["packages"])
    package_dir = dict(line.split(" = ") for line in listed(cfg["options"]["package_dir"]))
    entry_points = dict(
        line.split(" = ") for line in listed(cfg["options.entry_points"]["devpi_core"])
    )
    for package in plugin_packages():
        name = package.name
        assert name in packages, f"{name} is missing from setup.cfg packages"
        assert package_dir.get(name) == f"plugins/{name}"
        assert entry_points.get(name.removeprefix("devpi_core_")) == name
    # and nothing else: an entry point names a plugin package, never a core module
    assert sorted(entry_points.values()) == sorted(p.name for p in plugin_packages())


def hook_implementations() -> set[str]:
    """Names of hooks some bundled plugin or test plugin implements (``@hookimpl`` functions)."""
    names = set()
    for root in (PLUGINS, ROOT / "tests", CORE / "testing"):
        for path in python_files(root):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                    "hookimpl" in ast.unparse(decorator) for decorator in node.decorator_list
                ):
                    names.add(node.name)
    return names


def hookspec_functions() -> dict[str, object]:
    return {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("devpi_")
    }


def test_every_hook_is_documented():
    problems = []
    for name, fn in hookspec_functions().items():
        doc = inspect.getdoc(fn) or ""
        if "Called" not in doc or ".. versionadded::" not in doc:
            problems.append(f"{name}: say when it is called and since when it exists")
        if ("first non-none" in doc.lower()) != bool(fn.devpi_core_spec.get("firstresult")):
            problems.append(f"{name}: the docstring and firstresult disagree")
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        undocumented = [p for p in params if f":param {p}:" not in doc]
        if undocumented and name not in PARAMS_EXPLAINED_IN_PROSE:
            problems.append(f"{name}: no :param: line for {', '.join(undocumented)}")
    assert problems == []


# hooks whose single event argument is described by the event's type
PARAMS_EXPLAINED_IN_PROSE = {
    "devpi_on_upload",
    "devpi_on_delete",
    "devpi_on_index_change",
    "devpi_on_mirror_refresh",
}


def test_every_hook_has_an_implementation():
    missing = sorted(set(hookspec_functions()) - hook_implementations())
    assert missing == [], "hooks nobody implements (placeholders?)"
