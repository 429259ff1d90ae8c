"""Reading credentials: devpi's ``X-Devpi-Auth`` header and HTTP Basic (pip, twine, uv)."""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from devpi_core.records import Credentials

if TYPE_CHECKING:
    from pyramid.request import Request


def _decode_pair(encoded: str) -> tuple[str, str] | None:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    user, sep, secret = text.partition(":")
    if not sep or not user:
        return None
    return user, secret


def from_request(request: Request) -> Credentials | None:
    """``X-Devpi-Auth: base64(user:secret)`` first, then ``Authorization: Basic ...``."""
    header = request.headers.get("X-Devpi-Auth")
    if header:
        pair = _decode_pair(header)
        if pair is not None:
            return Credentials(pair[0], pair[1], "x-devpi-auth")
    authorization = request.headers.get("Authorization", "")
    scheme, _sep, value = authorization.partition(" ")
    if scheme.lower() == "basic" and value:
        pair = _decode_pair(value)
        if pair is not None:
            return Credentials(pair[0], pair[1], "basic")
    return None
