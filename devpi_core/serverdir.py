"""The server directory: identity, secret and scratch space shared by every storage backend.

Layout (storage plugins add their own files beside these):

``.nodeinfo``     JSON ``{"uuid": ..., "format": 1}``: the server's identity and data format
``.secret``       32 random bytes (mode 0600) that sign login tokens across restarts
``+tmp/``         temporary files, on the same filesystem so finished blobs can be renamed
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from devpi_core.errors import StartupError

DATA_FORMAT = 1
SECRET_BYTES = 32
# What may already be in a directory that becomes a server directory: a prepared configuration
# file, and what a freshly formatted volume holds.
ALLOWED_BEFORE_INIT = frozenset({"devpi-core.yml", "lost+found"})


@dataclass(frozen=True)
class ServerDir:
    """An initialised server directory."""

    path: str
    uuid: str
    secret: bytes

    @property
    def tmpdir(self) -> str:
        """This process's scratch space for uploads and downloads in progress."""
        return os.path.join(self.path, "+tmp", f"p{os.getpid()}")


def is_initialised(path: str) -> bool:
    """Whether ``path`` holds a server directory."""
    return os.path.isfile(os.path.join(path, ".nodeinfo"))


def create(path: str) -> ServerDir:
    """Initialise ``path`` (creating it); refuse if it is already a server directory."""
    if is_initialised(path):
        raise StartupError(f"{path} is already initialised; "
                           "remove it or choose another --serverdir")
    _refuse_foreign_content(path)
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        _write_atomic(os.path.join(path, ".secret"), secrets.token_bytes(SECRET_BYTES), 0o600)
        info = {"uuid": uuid.uuid4().hex, "format": DATA_FORMAT}
        _write_atomic(os.path.join(path, ".nodeinfo"), json.dumps(info).encode(), 0o644)
    except OSError as exc:
        raise StartupError(f"cannot initialise {path}: {exc.strerror}; "
                           "choose a writable --serverdir") from None
    return open_serverdir(path)


def _refuse_foreign_content(path: str) -> None:
    # A typo like --serverdir ~ must not scatter server files among someone's own.
    try:
        foreign = sorted(set(os.listdir(path)) - ALLOWED_BEFORE_INIT)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise StartupError(f"cannot read {path}: {exc.strerror}") from None
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise StartupError(f"{path} is not empty ({shown}) and not a server directory; "
                           "choose a new or empty --serverdir")


def open_serverdir(path: str) -> ServerDir:
    """Open an initialised directory, checking it is writable and its data format."""
    if not is_initialised(path):
        raise StartupError(f"{path} is not initialised; run 'devpi-core init --serverdir {path}'")
    try:
        info = json.loads(Path(path, ".nodeinfo").read_text())
        secret = Path(path, ".secret").read_bytes()
    except (OSError, ValueError) as exc:
        raise StartupError(f"cannot read {path}: {exc}") from None
    if info.get("format") != DATA_FORMAT:
        raise StartupError(f"{path} holds data format {info.get('format')!r}; "
                           f"this devpi-core reads format {DATA_FORMAT}")
    if len(secret) < SECRET_BYTES:
        raise StartupError(f"{path}/.secret is too short; delete it and run init again")
    if stat.S_IMODE(os.stat(os.path.join(path, ".secret")).st_mode) & 0o077:
        os.chmod(os.path.join(path, ".secret"), 0o600)
    tmp = os.path.join(path, "+tmp", f"p{os.getpid()}")
    try:
        _remove_dead_tmpdirs(os.path.dirname(tmp))
        os.makedirs(tmp, exist_ok=True)
        probe = os.path.join(tmp, ".write-probe")
        Path(probe).write_bytes(b"")
        os.unlink(probe)
    except OSError as exc:
        raise StartupError(f"{path} is not writable ({exc.strerror}); fix its permissions "
                           "or choose another --serverdir") from None
    return ServerDir(path=path, uuid=str(info["uuid"]), secret=secret)


def _remove_dead_tmpdirs(parent: str) -> None:
    """Delete scratch directories of processes that no longer run (killed mid-write)."""
    if not os.path.isdir(parent):
        return
    for entry in os.listdir(parent):
        pid = int(entry[1:]) if entry[:1] == "p" and entry[1:].isdigit() else None
        if pid is None or pid == os.getpid() or not _alive(pid):
            shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_atomic(path: str, data: bytes, mode: int) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
