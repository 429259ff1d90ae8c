"""Errors that cross the HTTP boundary.

Plugins and services raise these; the one exception view in ``views/errors.py`` turns them into a
response with the status and a JSON (or text) body ``{"message": ...}``.
"""

from __future__ import annotations


class DevpiError(Exception):
    """An error with an HTTP status and a message meant for the client."""

    status = 500
    code = "error"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        # seconds, sent as ``Retry-After``: when the same request may succeed
        self.retry_after = retry_after


class BadRequest(DevpiError):
    """The request is malformed or its values are invalid (400)."""

    status = 400
    code = "bad_request"


class Unauthorized(DevpiError):
    """Credentials are missing or wrong (401); answered with ``WWW-Authenticate: Basic``
    unless ``challenge=False`` (a refused ``/+login`` or push: nothing to retry with Basic)."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, challenge: bool = True) -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(DevpiError):
    """The identity is known but not allowed to do this (403)."""

    status = 403
    code = "forbidden"


class NotFound(DevpiError):
    """The addressed user, index, project, version or file does not exist (404)."""

    status = 404
    code = "not_found"


class Gone(DevpiError):
    """The addressed thing existed but was deleted (410)."""

    status = 410
    code = "gone"


class Conflict(DevpiError):
    """The request conflicts with what is stored (409)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(DevpiError):
    """The request body exceeds a configured limit (413)."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(DevpiError):
    """The request or the requested representation has the wrong media type (415)."""

    status = 415
    code = "unsupported_media_type"


class TooManyRequests(DevpiError):
    """Too many failed attempts (429); ``retry_after`` says when to try again."""

    status = 429
    code = "too_many_requests"


class ServiceUnavailable(DevpiError):
    """The server is too busy for this request right now (503); ``retry_after`` says when."""

    status = 503
    code = "unavailable"


class UpstreamUnavailable(DevpiError):
    """An upstream index failed and nothing usable is cached (502, or 504 on a time-out)."""

    status = 502
    code = "upstream"


class ConfigError(Exception):
    """Configuration could not be loaded; ``errors`` holds every ``file:line: key: message``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


class StartupError(Exception):
    """The server cannot start; the message says what to do. Printed without a traceback."""
