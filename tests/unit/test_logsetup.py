"""Logging set-up: request ids on every record, text and JSON lines, safe request paths."""

from __future__ import annotations

import json
import logging

import pytest

from devpi_core.config import LoggingSettings
from devpi_core.logsetup import configure, logged_path, request_id


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    access = logging.getLogger("devpi_core.access")
    saved = (list(root.handlers), root.level, access.disabled)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    access.disabled = saved[2]


def log_lines(tmp_path, fmt, *, access_log=True):
    path = tmp_path / "server.log"
    configure(LoggingSettings(level="INFO", format=fmt, access_log=access_log, file=str(path)))
    token = request_id.set("req-42")
    try:
        logging.getLogger("devpi_core.test").info("inside %s", "a request")
        logging.getLogger("devpi_core.access").info("GET / 200")
    finally:
        request_id.reset(token)
    logging.getLogger("devpi_core.test").debug("below the level")
    logging.getLogger("devpi_core.test").warning("outside")
    for handler in logging.getLogger().handlers:
        handler.flush()
    return path.read_text().splitlines()


@pytest.mark.usefixtures("restore_logging")
def test_text_lines_carry_the_request_id(tmp_path):
    lines = log_lines(tmp_path, "text")
    assert len(lines) == 3
    assert lines[0].endswith("INFO  [req-42] devpi_core.test: inside a request")
    assert lines[1].endswith("INFO  [req-42] devpi_core.access: GET / 200")
    assert lines[2].endswith("WARNING [-] devpi_core.test: outside")


@pytest.mark.usefixtures("restore_logging")
def test_json_lines(tmp_path):
    records = [json.loads(line) for line in log_lines(tmp_path, "json")]
    assert [(r["request_id"], r["logger"], r["message"]) for r in records] == [
        ("req-42", "devpi_core.test", "inside a request"),
        ("req-42", "devpi_core.access", "GET / 200"),
        ("-", "devpi_core.test", "outside"),
    ]
    assert records[0]["level"] == "INFO"
    assert records[0]["time"].endswith("Z")


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_include_tracebacks(tmp_path):
    path = tmp_path / "server.log"
    configure(LoggingSettings(level="INFO", format="json", access_log=True, file=str(path)))
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("devpi_core.test").exception("failed")
    for handler in logging.getLogger().handlers:
        handler.flush()
    record = json.loads(path.read_text())
    assert record["message"] == "failed"
    assert "ValueError: boom" in record["exc"]


@pytest.mark.usefixtures("restore_logging")
def test_access_log_can_be_switched_off(tmp_path):
    lines = log_lines(tmp_path, "text", access_log=False)
    assert not [line for line in lines if "devpi_core.access" in line]
    assert len(lines) == 2


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"PATH_INFO": "/root/pypi/+simple/"}, "/root/pypi/+simple/"),
        ({"PATH_INFO": "/a", "QUERY_STRING": "no_projects="}, "/a?no_projects="),
        ({"SCRIPT_NAME": "/prefix", "PATH_INFO": "/+api"}, "/prefix/+api"),
        # WSGI paths are latin-1 text; bytes that are not UTF-8 must not break logging
        ({"PATH_INFO": "/\xff\xfe"}, "/%FF%FE"),
        ({"PATH_INFO": "/a b\x00"}, "/a%20b%00"),
        ({"PATH_INFO": "/" + "x" * 600}, "/" + "x" * 499 + "..."),
    ],
)
def test_logged_path(environ, expected):
    assert logged_path(environ) == expected
