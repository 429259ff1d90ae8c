"""The documentation and deployment templates cannot drift from the code.

- docs/configuration.rst and docs/hooks.rst are generated; they must equal a fresh generation.
- Every hookspec appears in docs/hooks.rst with its exact signature (read independently of the
  generator, with :mod:`inspect`).
- Every page parses as reStructuredText without warnings (Sphinx-only directives and roles are
  stubbed; ``literalinclude`` and ``toctree`` targets must exist); README.rst renders the way the
  package index renders it.
- contrib/: the example YAML passes ``devpi-core check-config``; nginx, systemd, cron and logrotate
  agree with it and with each other (and pass ``nginx -t``, ``systemd-analyze verify`` and
  ``logrotate -d`` where those tools are installed); the cron backup line, run as written, gives
  a copy that restores into a working server.
- docs/plugins.rst: its worked example runs (``test_hello_plugin_in_process``) and its table of
  the public API is the one ``tests/test_architecture.py`` enforces.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import inspect
import io
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urljoin

import pytest
import webtest
from docutils.core import publish_doctree
from docutils.parsers.rst import Directive, directives, roles
from readme_renderer.rst import render
from ruamel.yaml import YAML

from devpi_core import hookspecs, services, specs
from devpi_core.app import make_app as build_app
from devpi_core.bootstrap import load_plugins
from devpi_core.cli import main as cli_main
from devpi_core.config import CORE_SECTIONS, load_raw, parse_size
from devpi_core.config_reference import reference_rst
from devpi_core.indextypes import IndexType
from devpi_core.serverdir import open_serverdir
from devpi_core.testing.dists import DistSpec, make_wheel
from devpi_core.testing.plugin import bin_path, server_config, tool_path, write_config
from devpi_core.views import ROUTES as CORE_ROUTES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CONTRIB = ROOT / "contrib"
EXAMPLE_CONFIG = CONTRIB / "devpi-core.yml"
NGINX = CONTRIB / "nginx" / "devpi-core.conf"
SYSTEMD = CONTRIB / "systemd" / "devpi-core.service"
CRON = CONTRIB / "cron" / "devpi-core"
LOGROTATE = CONTRIB / "logrotate" / "devpi-core"
HELLO = ROOT / "tests" / "e2e" / "data" / "devpi-core-hello"
REFERENCE_COMMAND = (
    ".venv/bin/devpi-core plugins --reference --config /dev/null > docs/configuration.rst"
)


# -- generated pages ------------------------------------------------------------------------
def test_configuration_reference_is_current():
    plugins, _settings = load_plugins(None)
    expected = reference_rst(plugins) + "\n"  # the command prints one more newline
    actual = (DOCS / "configuration.rst").read_text(encoding="utf-8")
    assert actual == expected, (
        f"docs/configuration.rst is out of date; refresh it with:\n  {REFERENCE_COMMAND}"
    )


def _gen_hooks() -> Any:
    return _load("devpi_core_docs_gen_hooks", DOCS / "gen_hooks.py")


def _load(name: str, path: Path) -> Any:
    """Import the module at ``path`` (not on sys.path) once, as ``name``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def test_hooks_page_is_current():
    gen = _gen_hooks()
    expected = gen.render(gen.read_hooks(gen.HOOKSPECS.read_text(encoding="utf-8")))
    actual = (DOCS / "hooks.rst").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/hooks.rst is out of date; refresh it with: .venv/bin/python docs/gen_hooks.py"
    )


def _hookspecs() -> dict[str, Any]:
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if callable(fn) and getattr(fn, "devpi_core_spec", None) is not None
    }


def _signature(fn: Any) -> str:
    # Annotations are strings (PEP 563), so the text is what the module spells.
    sig = inspect.signature(fn)
    params = []
    for param in sig.parameters.values():
        text = (
            param.name if param.annotation is param.empty else f"{param.name}: {param.annotation}"
        )
        if param.default is not param.empty:
            text += f" = {param.default!r}"
        params.append(text)
    returns = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
    return f"{fn.__name__}({', '.join(params)}){returns}"


def test_every_hookspec_is_documented_with_its_signature_and_docstring():
    page = (DOCS / "hooks.rst").read_text(encoding="utf-8")
    specs = _hookspecs()
    assert len(specs) >= 10
    for name, fn in specs.items():
        assert f".. py:function:: {_signature(fn)}\n" in page, f"{name}: signature missing or stale"
        docstring = "\n".join(
            f"   {line}" if line else "" for line in inspect.getdoc(fn).splitlines()
        )
        assert docstring in page, f"{name}: docstring missing or stale in docs/hooks.rst"


def test_hooks_page_documents_no_other_hooks():
    page = (DOCS / "hooks.rst").read_text(encoding="utf-8")
    documented = re.findall(r"^\.\. py:function:: (\w+)\(", page, re.MULTILINE)
    assert sorted(documented) == sorted(_hookspecs())


# -- reStructuredText -------------------------------------------------------------------------
class _AnyOptions(dict):
    """Accepts every option name, as the Sphinx directive stubbed here would."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


class _SphinxDirective(Directive):
    """A Sphinx-only directive: parsed (so its syntax is checked) and dropped."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec: ClassVar[dict[str, Any]] = _AnyOptions(_=directives.unchanged)
    missing: ClassVar[list[str]] = []

    def _require(self, target: Path, what: str) -> None:
        if not target.exists():
            self.missing.append(
                f"{self.state.document.current_source}: {what} {target} does not exist"
            )

    def run(self) -> list[Any]:
        here = Path(self.state.document.current_source).parent
        if self.name == "literalinclude":
            target = here / self.arguments[0]
            self._require(target, "literalinclude")
            wanted = self.options.get("pyobject")
            if wanted and target.exists() and wanted not in _top_level_names(target):
                self.missing.append(
                    f"{self.state.document.current_source}: no {wanted} in {target}"
                )
        if self.name == "toctree":
            for entry in self.content:
                if entry.strip() and not entry.strip().startswith(":"):
                    self._require(here / f"{entry.strip()}.rst", "toctree entry")
        return []


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }


SPHINX_DIRECTIVES = (
    "toctree",
    "literalinclude",
    "versionadded",
    "versionchanged",
    "deprecated",
    "seealso",
    "py:function",
    "py:class",
    "py:method",
    "py:attribute",
    "py:data",
    "py:module",
    "py:exception",
    "glossary",
    "only",
    "highlight",
    "option",
    "program",
    "envvar",
    "productionlist",
)
SPHINX_ROLES = (
    "doc",
    "ref",
    "func",
    "class",
    "meth",
    "attr",
    "mod",
    "data",
    "exc",
    "obj",
    "envvar",
    "option",
    "file",
    "program",
    "command",
    "term",
    "kbd",
    "samp",
    "py:func",
    "py:class",
    "py:meth",
    "py:mod",
    "py:attr",
    "py:data",
    "py:exc",
    "py:obj",
)


def _generic_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Any,
    options: Any = None,
    content: Any = None,
) -> tuple[list[Any], list[Any]]:
    return [], []


@pytest.fixture(scope="module")
def sphinx_stubs() -> None:
    for name in SPHINX_DIRECTIVES:
        directives.register_directive(name, _SphinxDirective)
    for name in SPHINX_ROLES:
        roles.register_local_role(name, _generic_role)


def _rst_problems(path: Path) -> list[str]:
    stream = io.StringIO()
    _SphinxDirective.missing = []
    publish_doctree(
        path.read_text(encoding="utf-8"),
        source_path=str(path),
        settings_overrides={
            "report_level": 2,
            "halt_level": 5,
            "warning_stream": stream,
            "file_insertion_enabled": True,
        },
    )
    return [line for line in stream.getvalue().splitlines() if line] + _SphinxDirective.missing


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.rst")))
def test_docs_page_is_valid_rst(sphinx_stubs, page):
    assert _rst_problems(DOCS / page) == []


def test_readme_renders_on_the_package_index():
    stream = io.StringIO()
    assert render((ROOT / "README.rst").read_text(encoding="utf-8"), stream=stream) is not None, (
        stream.getvalue()
    )


def test_readme_starts_with_make_serve_and_make_test():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    commands = re.findall(r"^ {4}(\S.*)$", text, re.MULTILINE)
    assert [c.split("#")[0].strip() for c in commands[:2]] == ["make serve", "make test"]


def test_changelog_fragments_are_named_for_towncrier():
    fragments = [p.name for p in (ROOT / "changelog.d").iterdir() if not p.name.startswith(".")]
    assert fragments
    for name in fragments:
        assert re.fullmatch(r"[\w-]+\.(feature|bugfix|doc|removal|misc)\.rst", name), name


# -- the plugin author's guide -------------------------------------------------------------
@pytest.fixture
def devpi_core_hello(monkeypatch):
    """The example plugin of docs/plugins.rst, imported from its source tree."""
    monkeypatch.syspath_prepend(str(HELLO))
    module = importlib.import_module("devpi_core_hello")
    yield module
    for name in [name for name in sys.modules if name.startswith("devpi_core_hello")]:
        del sys.modules[name]


# docs/plugins.rst shows this test (literalinclude :pyobject:), so the guide's example runs.
def test_hello_plugin_in_process(make_app, devpi_core_hello):
    client = make_app(
        {"plugins": {"hello": {"greeting": "hi"}}}, modules=(("hello", devpi_core_hello),)
    )
    assert client.get_json("/+hello")["result"] == {"greeting": "hi", "groups": []}

    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("grouped", "1.0")))
    client.create_index("alice/all", type="group", bases="alice/dev")
    assert client.simple_filenames("alice/all", "grouped") == ["grouped-1.0-py3-none-any.whl"]
    assert client.get_json("/+hello")["result"]["groups"] == ["alice/all"]


def test_public_api_table_matches_the_architecture_test():
    arch = _load("devpi_core_docs_architecture", ROOT / "tests" / "test_architecture.py")
    page = (DOCS / "plugins.rst").read_text(encoding="utf-8")
    table = page.split("The public API\n--------------\n", 1)[1].split("\n\n\n", 1)[0]
    documented = set(re.findall(r"^``(devpi_core[\w.]*)``", table, re.MULTILINE))
    assert documented == {*arch.PUBLIC, arch.TESTING}


def test_index_type_section_names_every_method():
    page = (DOCS / "plugins.rst").read_text(encoding="utf-8")
    section = page.split("Index types\n-----------\n", 1)[1].split("\n\n\n", 1)[0]
    methods = [
        name
        for name, member in vars(IndexType).items()
        if callable(member) and not name.startswith("_")
    ]
    missing = [name for name in methods if f"``{name}(" not in section]
    assert not missing, f"docs/plugins.rst, Index types: describe {missing}"


def test_services_section_names_every_accessor():
    page = (DOCS / "plugins.rst").read_text(encoding="utf-8")
    section = page.split("Services\n--------\n", 1)[1].split("\n\n\nViews\n", 1)[0]
    public = [
        name
        for name, member in vars(services).items()
        if inspect.isfunction(member)
        and member.__module__ == services.__name__
        and not name.startswith("_")
        and name != "shutdown"  # called by the server and the fixtures, not by plugins
    ]
    missing = [name for name in public if f"{name}(" not in section]
    assert not missing, f"docs/plugins.rst, Services: describe {missing}"


def test_registration_objects_are_described_with_their_fields():
    page = (DOCS / "plugins.rst").read_text(encoding="utf-8")
    section = page.split("Registration objects\n--------------------\n", 1)[1]
    section = section.split("\n\n\nServices\n", 1)[0]
    checked = 0
    for cls in vars(specs).values():
        if not (dataclasses.is_dataclass(cls) and cls.__module__ == specs.__name__):
            continue
        assert f"``{cls.__name__}" in section, f"docs/plugins.rst: describe {cls.__name__}"
        entry = re.search(rf"^``{cls.__name__}\((.*)\)``$", section, re.MULTILINE)
        if entry is not None:
            documented = [part.split("=")[0].strip() for part in entry.group(1).split(",")]
            assert documented == [f.name for f in dataclasses.fields(cls)], cls.__name__
            checked += 1
    assert checked >= 5


def test_route_table_lists_the_core_routes_in_order():
    page = (DOCS / "plugins.rst").read_text(encoding="utf-8")
    documented = re.findall(r"^``(\w+)``\s+``(/[^`]*)``$", page, re.MULTILINE)

    def simple(pattern: str) -> str:
        return re.sub(r"\{(\w+):[^}]*\}", r"{\1}", pattern.replace("{slash:/?}", ""))

    assert documented == [(name, simple(pattern)) for name, pattern in CORE_ROUTES]


# -- contrib/ -------------------------------------------------------------------------------
def _example() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return data


def test_example_config_passes_check_config(capsys):
    assert cli_main(["check-config", str(EXAMPLE_CONFIG)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")


def test_cluster_example_config_passes_check_config(capsys, monkeypatch):
    for name in ("DEVPI_PG_DSN", "DEVPI_S3_KEY", "DEVPI_S3_SECRET"):
        monkeypatch.setenv(name, "from-the-environment")
    path = CONTRIB / "cluster" / "production.yml"
    assert cli_main(["check-config", str(path)]) == 0
    assert capsys.readouterr().out.strip().endswith(": ok")
    page = (ROOT / "docs" / "scale-out.rst").read_text(encoding="utf-8")
    assert ".. literalinclude:: ../contrib/cluster/production.yml" in page


def test_example_config_sets_every_core_setting():
    example = _example()
    for section, declared in CORE_SECTIONS.items():
        assert sorted(example[section]) == sorted(declared.schema), (
            f"contrib/devpi-core.yml: section {section}"
        )


def test_nginx_accepts_what_the_server_accepts():
    conf = NGINX.read_text(encoding="utf-8")
    server = _example()["server"]
    body = re.search(r"^\s*client_max_body_size (\d+)m;", conf, re.MULTILINE)
    assert body is not None
    # waitress allows max_upload_size plus 1 MiB of multipart framing (devpi_core.serving)
    assert int(body.group(1)) * 1024 * 1024 == parse_size(server["max_upload_size"]) + (1 << 20)
    assert f"server {server['host']}:{server['port']};" in conf
    assert "proxy_set_header X-Outside-Url $scheme://$http_host;" in conf
    assert "proxy_buffering off;" in conf
    assert re.search(r"gzip_types [^;]*application/vnd\.pypi\.simple\.v1\+json", conf)


def test_nginx_accepts_the_configuration(tmp_path):
    nginx = tool_path("nginx")
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {NGINX};\n}}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(main)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


def test_systemd_accepts_the_unit(tmp_path):
    systemd_analyze = tool_path("systemd-analyze")
    # verify also checks that ExecStart's program exists: point it at this devpi-core
    unit = tmp_path / "devpi-core.service"
    exec_start = shlex.split(_unit()["ExecStart"][0])[0]
    unit.write_text(
        SYSTEMD.read_text(encoding="utf-8").replace(exec_start, bin_path("devpi-core")),
        encoding="utf-8",
    )
    result = subprocess.run(
        [systemd_analyze, "verify", str(unit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 0
    assert result.stdout + result.stderr == ""


def _unit() -> dict[str, list[str]]:
    unit: dict[str, list[str]] = {}
    for line in SYSTEMD.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _sep, value = line.partition("=")
            unit.setdefault(key, []).append(value)
    return unit


def _cron() -> tuple[dict[str, str], list[list[str]]]:
    env: dict[str, str] = {}
    jobs = []
    for line in CRON.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if re.match(r"^[A-Z_]+=", line):
            key, _sep, value = line.partition("=")
            env[key] = value
        else:
            fields = line.split(None, 1 if line.startswith("@") else 5)
            schedule, rest = fields[:-1], fields[-1]
            user, command = rest.split(None, 1)
            jobs.append([" ".join(schedule), user, command])
    return env, jobs


def test_systemd_unit_and_cron_run_the_same_server_as_the_same_user():
    unit = _unit()
    env, jobs = _cron()
    serverdir = _example()["server"]["serverdir"]
    exec_start = shlex.split(unit["ExecStart"][0])
    assert exec_start[1:] == ["serve", "--config", "/etc/devpi-core/devpi-core.yml"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["Restart"] == ["on-failure"]
    assert serverdir in unit["ReadWritePaths"][0].split()
    assert unit["StateDirectory"] == [Path(serverdir).name]
    assert env["SERVERDIR"] == serverdir
    reboot = next(job for job in jobs if job[0] == "@reboot")
    assert reboot[1] == unit["User"][0]
    assert shlex.split(reboot[2])[:4] == exec_start
    for _schedule, user, command in jobs:
        assert user == unit["User"][0]
        assert re.search(r"(?<!\\)%", command) is None, "cron turns a bare % into a newline"


def test_logrotate_covers_the_log_the_cron_job_writes(tmp_path):
    _env, jobs = _cron()
    reboot = next(job for job in jobs if job[0] == "@reboot")
    logfile = re.search(r">>\s*(\S+)", reboot[2])
    assert logfile is not None
    conf = LOGROTATE.read_text(encoding="utf-8")
    pattern = re.search(r"^(/\S+) \{", conf, re.MULTILINE)
    assert pattern is not None
    assert Path(logfile.group(1)).match(pattern.group(1))
    assert "copytruncate" in conf  # devpi-core keeps its log file open
    assert f"su {_unit()['User'][0]} {_unit()['Group'][0]}" in conf
    logrotate = tool_path("logrotate")
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "server.log").write_text("x\n", encoding="utf-8")
    local = conf.replace(str(Path(pattern.group(1)).parent), str(tmp_path / "log"))
    local = re.sub(r"^\s*su .*$", "", local, flags=re.MULTILINE)
    (tmp_path / "conf").write_text(local, encoding="utf-8")
    result = subprocess.run(
        [logrotate, "-d", "-s", str(tmp_path / "state"), str(tmp_path / "conf")],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "error" not in (result.stdout + result.stderr).lower()


@pytest.fixture
def serverdir_with_upload(make_app) -> tuple[Path, str, bytes]:
    """A server directory holding one uploaded wheel: (path, file URL path, content)."""
    client = make_app()
    client.create_and_login("alice")
    client.create_index("alice/dev")
    dist = make_wheel(DistSpec("backedup", "1.0"))
    client.upload("alice/dev", dist)
    url = client.simple("alice/dev", "backedup", json_api=True).json["files"][0]["url"]
    path = urljoin("/alice/dev/+simple/backedup/", url.split("#")[0])
    serverdir = Path(services.settings(client.app.app.registry).server.serverdir)
    return serverdir, path, dist.content


def test_cron_backup_restores_into_a_working_server(serverdir_with_upload, tmp_path):
    rsync = tool_path("rsync")
    serverdir, path, content = serverdir_with_upload
    env, jobs = _cron()
    backup = next(job for job in jobs if job[0] != "@reboot")
    command = backup[2].replace("\\%", "%")  # what cron hands to the shell
    run_env = {
        "PATH": f"{Path(rsync).parent}:/usr/bin:/bin",
        "SERVERDIR": str(serverdir),
        "BACKUPDIR": str(tmp_path / "backup"),
    }
    subprocess.run([env["SHELL"], "-c", command], env=run_env, check=True, timeout=60)

    snapshots = sorted((tmp_path / "backup").glob("metadata-*.sqlite"))
    assert len(snapshots) == 1
    with sqlite3.connect(snapshots[0]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    # The restore steps of docs/deployment.rst: snapshot, blobs, identity and secret.
    restored = tmp_path / "restored"
    restored.mkdir()
    shutil.copy(snapshots[0], restored / "metadata.sqlite")
    shutil.copytree(tmp_path / "backup" / "blobs", restored / "+blobs")
    for name in (".nodeinfo", ".secret"):
        shutil.copy(tmp_path / "backup" / name, restored / name)
    plugins, settings = load_plugins(
        load_raw(str(write_config(tmp_path / "c.yml", server_config())))
    )
    settings = settings.with_overrides(serverdir=str(restored))
    app = build_app(plugins, settings, open_serverdir(str(restored)))
    try:
        response = webtest.TestApp(app).get(path, headers={"Accept": "*/*"})
        assert response.body == content
    finally:
        services.shutdown(app.registry)
