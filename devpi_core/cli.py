"""The ``devpi-core`` command: init, serve, passwd, plugins, check-config, gen-config, import,
export, quarantined, fsck, gc.

Errors are one line (or one line per configuration problem) and a non-zero exit status; no
tracebacks for mistakes an operator can fix.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import logging
import signal
import sys
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devpi_core import __version__
from devpi_core.blob_gc import BlobCollector
from devpi_core.bootstrap import initialise_data, load_plugins, open_core, open_stores
from devpi_core.config import (
    CONFIG_NAME,
    RawConfig,
    Settings,
    find_config_file,
    load_raw,
    resolve_serverdir,
)
from devpi_core.config_reference import default_yaml, describe_plugin_settings, reference_rst
from devpi_core.errors import ConfigError, StartupError
from devpi_core.fsck import DEFAULT_GRACE, check
from devpi_core.logsetup import configure
from devpi_core.migration.dump import DumpError
from devpi_core.migration.exporter import export_dump
from devpi_core.migration.importer import import_dump
from devpi_core.migration.progress import Progress
from devpi_core.serverdir import ServerDir, create, is_initialised, open_serverdir
from devpi_core.serving import run

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from devpi_core.bootstrap import Core
    from devpi_core.plugins import Plugins

log = logging.getLogger("devpi_core.cli")
EXIT_CONFIG = 2


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _migration_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """``import`` and ``export``."""
    p = sub.add_parser("import", help="import a devpi-server (or devpi-core) export into an "
                                      "empty server; all or nothing")
    common(p)
    p.add_argument("directory", help="the directory devpi-export or devpi-core export wrote")
    p.add_argument("--dry-run", action="store_true",
                   help="check the whole dump (JSON, names, bases, file hashes); write nothing")
    p.add_argument("--include-mirrored-files", action="store_true",
                   help="import mirror indexes' files into their caches (else they are skipped)")
    p = sub.add_parser("export", help="export users, indexes and files in devpi-server's "
                                      "format (devpi-import reads it)")
    common(p)
    p.add_argument("directory", help="a new or empty directory")
    p.add_argument("--include-mirrored-files", action="store_true",
                   help="export mirror indexes' cached files too (as devpi-export does)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="devpi-core",
                                     description="A Python package index server.")
    parser.add_argument("--version", action="version", version=f"devpi-core {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--serverdir",
                       help="data directory (default $DEVPI_CORE_SERVERDIR or ~/.devpi-core)")
        p.add_argument("--config", help="YAML configuration file (default $DEVPI_CORE_CONFIG "
                                         f"or <serverdir>/{CONFIG_NAME})")

    p = sub.add_parser("init", help="create a server directory with user root and default indexes")
    common(p)
    p.add_argument("--root-passwd", default="", help="password of user root (default: empty)")
    p.add_argument("--no-default-indexes", action="store_true", help="do not create root/pypi")
    p = sub.add_parser("serve", help="run the server (initialises an empty server directory)")
    common(p)
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (default 3141; 0 picks a free one)")
    p.add_argument("--offline-mode", action="store_true", default=None,
                   help="never contact upstream indexes")
    p.add_argument("--debug", action="store_true", help="log at DEBUG level")
    p = sub.add_parser("passwd", help="set a user's password (read twice from the terminal, "
                                      "or once from standard input)")
    common(p)
    p.add_argument("user")
    p = sub.add_parser("plugins", help="list active plugins, their hooks and settings")
    common(p)
    p.add_argument("--reference", action="store_true",
                   help="print the configuration reference (rst)")
    p = sub.add_parser("check-config", help="validate a configuration file")
    p.add_argument("file")
    p = sub.add_parser("gen-config", help="print a commented configuration file with all defaults")
    common(p)
    _migration_parsers(sub, common)
    p = sub.add_parser("quarantined", help="list stored files that are kept but no longer "
                                           "served (quarantined projects, removed upstream)")
    common(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p = sub.add_parser("fsck", help="check that metadata and file contents agree (exit 1 if not)")
    common(p)
    p.add_argument("--repair", action="store_true",
                   help="delete orphan blobs older than the grace period (nothing else)")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE, metavar="SECONDS",
                   help=f"orphans younger than this may be uploads in progress "
                        f"(default {DEFAULT_GRACE:.0f})")
    p = sub.add_parser("gc", help="delete file contents unreferenced for longer than the grace "
                                  "period (blob garbage collection) now")
    common(p)
    p.add_argument("--grace", type=float, metavar="SECONDS",
                   help="unreferenced for at least this long (default: storage.blob_gc_grace)")
    return parser


def _load(args: argparse.Namespace) -> tuple[Plugins, Settings]:
    path = find_config_file(getattr(args, "config", None), getattr(args, "serverdir", None))
    raw = load_raw(path)
    plugins, settings = load_plugins(raw)
    # flag > file > $DEVPI_CORE_SERVERDIR > default (the last two are applied by the loader)
    overrides: dict[str, Any] = {
        key: getattr(args, key, None) for key in ("host", "port", "offline_mode")
    }
    if getattr(args, "serverdir", None):
        overrides["serverdir"] = resolve_serverdir(args.serverdir)
    return plugins, settings.with_overrides(**overrides)


def _create_serverdir(plugins: Plugins, settings: Settings) -> ServerDir:
    """The server directory, created with a commented configuration file if it is new."""
    path = settings.server.serverdir
    if is_initialised(path):
        return open_serverdir(path)
    serverdir = create(path)
    config_file = Path(path, CONFIG_NAME)
    if not config_file.exists():
        config_file.write_text(default_yaml(plugins), encoding="utf-8")
    return serverdir


def cmd_init(args: argparse.Namespace) -> int:
    plugins, settings = _load(args)
    if is_initialised(settings.server.serverdir):
        raise StartupError(f"{settings.server.serverdir} is already initialised")
    serverdir = _create_serverdir(plugins, settings)
    core = open_core(plugins, settings, serverdir)
    try:
        created = initialise_data(core.users, core.indexes, plugins=plugins, settings=settings,
                                  root_password=args.root_passwd,
                                  default_indexes=not args.no_default_indexes)
    finally:
        core.close()
    _out(f"initialised {settings.server.serverdir}: {', '.join(created)}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    plugins, settings = _load(args)
    configure(replace(settings.logging, level="DEBUG") if args.debug else settings.logging)
    serverdir = _create_serverdir(plugins, settings)
    return run(plugins, settings, serverdir, announce=_out)


@contextlib.contextmanager
def _opened_core(args: argparse.Namespace) -> Iterator[tuple[Settings, Core]]:
    """The stores and services of an initialised server directory, closed afterwards."""
    plugins, settings = _load(args)
    core = open_core(plugins, settings, open_serverdir(settings.server.serverdir))
    try:
        yield settings, core
    finally:
        core.close()


def cmd_passwd(args: argparse.Namespace) -> int:
    with _opened_core(args) as (settings, core):
        if core.users.get(args.user) is None:
            raise StartupError(f"no user {args.user!r} in {settings.server.serverdir}")
        password = _read_new_password(args.user)
        core.users.set_password(args.user, password)
    _out(f"password of {args.user} changed")
    return 0


def _read_new_password(user: str) -> str:
    """The new password, typed twice on a terminal or one line of standard input.

    An empty password is allowed, as devpi allows it (root starts with one), but on a terminal
    only after a yes, and from standard input only as an empty line (end of input is refused).
    """
    if sys.stdin.isatty():
        password = getpass.getpass(f"new password for {user}: ")
        if getpass.getpass("repeat: ") != password:
            raise StartupError("the passwords differ; nothing changed")
        if not password:
            answer = input(f"set an empty password: anyone can log in as {user}? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                raise StartupError("empty password not confirmed; nothing changed")
        return password
    line = sys.stdin.readline()
    if not line:
        raise StartupError("no password on standard input; nothing changed")
    return line.rstrip("\n")


def cmd_plugins(args: argparse.Namespace) -> int:
    plugins, _settings = _load(args)
    if args.reference:
        _out(reference_rst(plugins))
        return 0
    for info in plugins.infos:
        origin = "bundled" if info.bundled else f"{info.dist} {info.version}".strip()
        _out(f"{info.name} ({origin}): {info.module}")
        _out(f"  hooks: {', '.join(plugins.hooks_of(info.name))}")
        for line in describe_plugin_settings(plugins, info.name):
            _out(f"  {line}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    raw: RawConfig | None = load_raw(args.file)
    load_plugins(raw)
    _out(f"{args.file}: ok")
    return 0


def cmd_gen_config(args: argparse.Namespace) -> int:
    plugins, _settings = _load(args)
    _out(default_yaml(plugins).rstrip("\n"))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    plugins, settings = _load(args)
    serverdir = _create_serverdir(plugins, settings)
    core = open_core(plugins, settings, serverdir)
    try:
        summary = import_dump(core, Path(args.directory), progress=Progress(sys.stdout),
                              dry_run=args.dry_run,
                              include_mirrored_files=args.include_mirrored_files)
        if not args.dry_run:  # a dump always has root; a hand-made one may not
            initialise_data(core.users, core.indexes, plugins=plugins, settings=settings,
                            root_password="", default_indexes=False)
    except DumpError as exc:
        raise StartupError(f"import stopped, nothing was imported: {exc}") from None
    finally:
        core.close()
    _out(summary.line("checked (dry run, nothing written):" if args.dry_run else "imported"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    with _opened_core(args) as (_settings, core):
        try:
            summary = export_dump(core, Path(args.directory), progress=Progress(sys.stdout),
                                  include_mirrored_files=args.include_mirrored_files)
        except DumpError as exc:
            raise StartupError(f"export stopped: {exc}") from None
    _out(summary.line(f"exported to {args.directory}:"))
    return 0


def cmd_quarantined(args: argparse.Namespace) -> int:
    with _opened_core(args) as (_settings, core):
        count = 0
        for user in core.users.names():
            for name in sorted(core.indexes.of_user(user)):
                record = core.indexes.require(f"{user}/{name}")
                for found in core.indexes.type_of(record).withheld_files():
                    path = core.blobs.local_path(found.sha256) or "-"
                    entry = {**asdict(found), "blob": path}
                    _out(json.dumps(entry) if args.json else "\t".join(
                        (found.index, found.project, found.filename,
                         f"sha256={found.sha256}", path, found.reason)))
                    count += 1
    if not args.json:
        _err(f"{count} withheld file(s)")
    return 0


def cmd_fsck(args: argparse.Namespace) -> int:
    plugins, settings = _load(args)
    open_serverdir(settings.server.serverdir)  # only an initialised server is checked
    store, blobs = open_stores(plugins, settings)
    try:
        report = check(store, blobs, repair=args.repair, grace=args.grace)
    finally:
        store.close()
    for line in (*report.notes, *report.repaired, *report.problems):
        _out(line)
    _out(f"{report.references} references, {report.blobs} blobs, "
         f"{len(report.repaired)} repaired, {len(report.problems)} problems")
    return 1 if report.problems else 0


def cmd_gc(args: argparse.Namespace) -> int:
    plugins, settings = _load(args)
    open_serverdir(settings.server.serverdir)  # only an initialised server is collected
    if args.grace is not None and args.grace < 0:
        raise StartupError("--grace must not be negative")
    store, blobs = open_stores(plugins, settings)
    try:
        collector = BlobCollector(store, blobs, grace=settings.storage.blob_gc_grace)
        report = collector.sweep(grace=args.grace)
    finally:
        store.close()
    if report.lease_held_elsewhere:
        raise StartupError("another process is collecting garbage now (it holds the 'gc' "
                           "lease); nothing was removed")
    for sha256, size in report.removed:
        _out(f"removed blob {sha256} ({size} bytes)")
    for sha256 in report.kept:
        _out(f"kept blob {sha256}: stored again since it became unreferenced")
    _out(f"{len(report.removed)} blobs removed, {report.bytes} bytes freed")
    return 0


COMMANDS = {
    "init": cmd_init,
    "serve": cmd_serve,
    "passwd": cmd_passwd,
    "plugins": cmd_plugins,
    "check-config": cmd_check_config,
    "gen-config": cmd_gen_config,
    "import": cmd_import,
    "export": cmd_export,
    "quarantined": cmd_quarantined,
    "fsck": cmd_fsck,
    "gc": cmd_gc,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``devpi-core`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        for line in exc.errors:
            _err(line)
        return EXIT_CONFIG
    except StartupError as exc:
        _err(f"devpi-core: error: {exc}")
        return 1
    except OSError as exc:  # a file the command needed, e.g. the configuration to write
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"devpi-core: error: {where}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM ends the server like Ctrl-C: stop accepting, finish, close the stores.
    raise KeyboardInterrupt


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
