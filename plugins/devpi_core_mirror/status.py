"""Reading an upstream page's PEP 792 project status, apart from the file parsing in ``pages``.

JSON pages carry ``"project-status": {"status": ..., "reason": ...}`` at the top level; HTML
pages ``<meta name="pypi:project-status" content=...>`` and ``pypi:project-status-reason``.
Both are found with a scan of the raw bytes, so a large JSON page is not decoded a second time:
only the small status object is. A missing or unknown status reads as None (active): an upstream
that says something we do not understand does not take a project away.
"""

from __future__ import annotations

import html
import json
import re

from devpi_core.records import PROJECT_STATUSES, ProjectStatus

MAX_REASON = 1000
# the status object holds two strings, no nested objects: up to its closing brace
_JSON_STATUS = re.compile(rb'"project-status"\s*:\s*(\{[^{}]{0,4096}\})')
_META = re.compile(rb"<meta\s([^>]*)>", re.IGNORECASE)
_ATTR = re.compile(rb"""([a-zA-Z:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""")


def _made(status: object, reason: object) -> ProjectStatus | None:
    if not isinstance(status, str) or status.strip().lower() not in PROJECT_STATUSES:
        return None
    status = status.strip().lower()
    if status == "active" and not reason:
        return None
    text = " ".join(reason.split())[:MAX_REASON] if isinstance(reason, str) else ""
    return ProjectStatus(status, text or None)


def status_from_json(body: bytes) -> ProjectStatus | None:
    """The ``project-status`` of a PEP 691 project page (None: none, or active)."""
    match = _JSON_STATUS.search(body)
    if match is not None:
        try:
            data = json.loads(match.group(1))
        except (ValueError, UnicodeDecodeError):
            data = None
    elif b'"project-status"' in body:
        # braces in the reason, a long reason: rare enough to decode the whole page for
        data = _whole_page_status(body)
    else:
        return None
    if not isinstance(data, dict):
        return None
    return _made(data.get("status"), data.get("reason"))


def _whole_page_status(body: bytes) -> object:
    try:
        page = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return page.get("project-status") if isinstance(page, dict) else None


def status_from_html(body: bytes) -> ProjectStatus | None:
    """The ``pypi:project-status`` meta tags of a PEP 503 project page (None: none, or active)."""
    found: dict[str, str] = {}
    for match in _META.finditer(body):
        attrs: dict[bytes, str] = {}
        for attr in _ATTR.finditer(match.group(1)):
            value = next((v for v in attr.groups()[1:] if v is not None), b"")
            attrs[attr.group(1).lower()] = html.unescape(value.decode("utf-8", "replace"))
        name = attrs.get(b"name")
        if name in ("pypi:project-status", "pypi:project-status-reason"):
            found.setdefault(name, attrs.get(b"content", ""))
    return _made(found.get("pypi:project-status"), found.get("pypi:project-status-reason"))


def status_from_page(body: bytes, *, is_json: bool) -> ProjectStatus | None:
    """The status of a project page in either format."""
    return status_from_json(body) if is_json else status_from_html(body)
