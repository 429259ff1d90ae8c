"""devpi's file URL paths: ``<user>/<index>/+f/<3 hex>/<13 hex>/<filename>``.

devpi-server splits the value of the file's hash spec (``sha256=<hex>`` of what it stored, or
whatever ``<algorithm>=<value>`` a mirrored link carries, however long) into two directories.
"""

from __future__ import annotations


def hashdir(digest: str) -> str:
    """``<first 3>/<next 13>`` characters of ``digest`` (fewer when it is shorter)."""
    return f"{digest[:3]}/{digest[3:16]}"


def hashdir_relpath(index: str, digest: str, filename: str) -> str:
    """``<index>/+f/<hashdir>/<filename>``."""
    return f"{index}/+f/{hashdir(digest)}/{filename}"
