"""Generated distributions for tests and benchmarks: real, installable wheels and sdists."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


def _escape(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass(frozen=True)
class Dist:
    """A distribution file in memory."""

    filename: str
    content: bytes
    metadata: bytes = b""

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file."""
        return hashlib.sha256(self.content).hexdigest()

    def write(self, directory: str | Path) -> Path:
        """Write the file into ``directory`` and return its path."""
        path = Path(directory) / self.filename
        path.write_bytes(self.content)
        return path


@dataclass
class DistSpec:
    """What to put into a distribution."""

    name: str
    version: str
    requires_python: str | None = None
    requires_dist: list[str] = field(default_factory=list)
    summary: str = "a generated test package"
    module_code: str = ""
    #: more METADATA lines, e.g. ``("License: MIT",)`` or a ``Classifier: License :: ...``
    extra_metadata: tuple[str, ...] = ()

    def metadata(self) -> bytes:
        """A METADATA / PKG-INFO file (metadata version 2.1)."""
        lines = [
            "Metadata-Version: 2.1",
            f"Name: {self.name}",
            f"Version: {self.version}",
            f"Summary: {self.summary}",
        ]
        if self.requires_python:
            lines.append(f"Requires-Python: {self.requires_python}")
        lines += [f"Requires-Dist: {req}" for req in self.requires_dist]
        lines += list(self.extra_metadata)
        return ("\n".join(lines) + "\n\n").encode()


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def make_wheel(spec: DistSpec, *, padding: int = 0) -> Dist:
    """A pure-Python ``py3-none-any`` wheel; ``padding`` adds incompressible bytes."""
    module = _escape(spec.name)
    distinfo = f"{module}-{spec.version}.dist-info"
    code = spec.module_code or f"__version__ = {spec.version!r}\n"
    files = {
        f"{module}/__init__.py": code.encode(),
        f"{distinfo}/METADATA": spec.metadata(),
        f"{distinfo}/WHEEL": b"Wheel-Version: 1.0\nGenerator: devpi-core-tests\n"
        b"Root-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    if padding:
        files[f"{module}/padding.bin"] = hashlib.sha256(spec.name.encode()).digest() * (
            padding // 32 + 1
        )
    record = [_record_line(path, data) for path, data in files.items()] + [f"{distinfo}/RECORD,,"]
    files[f"{distinfo}/RECORD"] = ("\n".join(record) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    filename = f"{module}-{spec.version}-py3-none-any.whl"
    return Dist(filename, buffer.getvalue(), spec.metadata())


def make_sdist(spec: DistSpec) -> Dist:
    """A setuptools sdist (``.tar.gz``) with PKG-INFO and a setup.py."""
    base = f"{_escape(spec.name)}-{spec.version}"
    module = _escape(spec.name)
    setup_py = (
        "from setuptools import setup\n"
        f"setup(name={spec.name!r}, version={spec.version!r}, packages=[{module!r}],"
        f" install_requires={spec.requires_dist!r}"
        + (f", python_requires={spec.requires_python!r}" if spec.requires_python else "")
        + ")\n"
    )
    files = {
        f"{base}/PKG-INFO": spec.metadata(),
        f"{base}/setup.py": setup_py.encode(),
        f"{base}/{module}/__init__.py": (
            spec.module_code or f"__version__ = {spec.version!r}\n"
        ).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tf:
        for path, data in files.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = int(time.mktime((2024, 1, 1, 0, 0, 0, 0, 0, 0)))
            info.mode = 0o644
            tf.addfile(info, io.BytesIO(data))
    return Dist(f"{base}.tar.gz", buffer.getvalue(), spec.metadata())


def make_doczip(pages: dict[str, str] | None = None) -> bytes:
    """A documentation zip (``index.html`` by default)."""
    pages = pages or {"index.html": "<html><body><h1>Docs</h1></body></html>"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in pages.items():
            zf.writestr(path, text)
    return buffer.getvalue()
