"""``GET /+metrics`` (Prometheus text through prometheus_client) and ``GET /+ready``."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from devpi_core import services
from devpi_core.errors import ServiceUnavailable
from devpi_core.testing.dists import DistSpec, make_wheel


def samples(client):
    response = client.app.get("/+metrics")
    assert response.content_type == "text/plain"
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_count_requests_by_route_and_status(client):
    client.app.get("/+api")
    client.app.get("/+api")
    client.app.get("/nobody/dev/+api", status=404)
    found = samples(client)
    ok = ("devpi_http_requests_total", (("method", "GET"), ("route", "api"), ("status", "200")))
    assert found[ok] == 2
    missing = (("method", "GET"), ("route", "index_api"), ("status", "404"))
    assert found[("devpi_http_requests_total", missing)] == 1
    count = found[("devpi_http_request_duration_seconds_count", (("route", "api"),))]
    assert count == 2
    inf = found[("devpi_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "api")))]
    assert inf == 2


def test_metrics_expose_the_serial_and_the_devpi_metrics_hook(client):
    client.create_and_login("alice")
    found = samples(client)
    serial = services.metadata_store(client.app.app.registry).current_serial()
    assert serial > 0
    assert found[("devpi_serial", ())] == serial
    # the mirror plugin's counters, through the devpi_metrics hook (as in /+status)
    assert ("devpi_mirror_upstream_errors_total", ()) in found
    assert ("devpi_mirror_waiting", ()) in found
    status = client.get_json("/+status")["result"]["metrics"]
    assert ["devpi_mirror_upstream_errors", "counter", 0.0] in status


def test_store_transactions_are_timed_by_backend_and_kind(client):
    def count(name, *labels):
        return samples(client).get((name, tuple(labels)), 0)

    backend, write = ("backend", "sqlite"), ("kind", "write")
    writes_before = count("devpi_store_transaction_duration_seconds_count", backend, write)
    waits_before = count("devpi_store_write_wait_seconds_count", backend)
    client.create_and_login("alice")  # a user: at least one write transaction
    writes = count("devpi_store_transaction_duration_seconds_count", backend, write)
    assert writes > writes_before
    assert count("devpi_store_write_wait_seconds_count", backend) - waits_before == (
        writes - writes_before
    )
    total = count("devpi_store_transaction_duration_seconds_sum", backend, write)
    assert total > 0
    client.get_json("/alice")  # reads the user
    assert count("devpi_store_transaction_duration_seconds_count", backend, ("kind", "read")) > 0
    inf = (("backend", "sqlite"), ("kind", "write"), ("le", "+Inf"))
    assert samples(client)[("devpi_store_transaction_duration_seconds_bucket", inf)] == writes


def test_warm_simple_pages_are_counted_under_their_route(client):
    client.create_and_login("alice")
    client.create_index("alice/dev")
    client.upload("alice/dev", make_wheel(DistSpec("pkg", "1.0")))
    client.logout()
    for _ in range(3):  # the second and third are answered by the page cache, before routing
        client.simple("alice/dev", "pkg")
    route = (("method", "GET"), ("route", "simple_project"), ("status", "200"))
    assert samples(client)[("devpi_http_requests_total", route)] == 3


def test_ready_when_both_stores_answer(client):
    response = client.app.get("/+ready")
    assert response.json["ready"] is True
    assert response.json["checks"] == {"metadata": "ok", "blobs": "ok"}
    store = services.metadata_store(client.app.app.registry)
    assert response.json["serial"] == store.current_serial()
    assert response.headers["Cache-Control"] == "no-store"


def test_not_ready_when_a_store_fails(client, monkeypatch):
    blobs = services.blob_store(client.app.app.registry)

    def unreachable():
        raise OSError("bucket gone")

    monkeypatch.setattr(blobs, "check", unreachable)
    response = client.app.get("/+ready", status=503)
    assert response.json["ready"] is False
    assert response.json["checks"] == {"metadata": "ok", "blobs": "error: OSError"}
    store = services.metadata_store(client.app.app.registry)

    def broken():
        raise RuntimeError("database down")

    monkeypatch.setattr(store, "read", broken)
    response = client.app.get("/+ready", status=503)
    assert response.json["checks"]["metadata"] == "error: RuntimeError"


def test_an_unreachable_metadata_store_is_a_503_everywhere_never_a_500(client, monkeypatch):
    # what pgstore raises while PostgreSQL restarts: every request, /+ready included, is a 503
    # (the serial header, read after the view, is left out rather than failing the answer)
    store = services.metadata_store(client.app.app.registry)

    def unreachable(*_args, **_kwargs):
        message = "the metadata store cannot be reached; please retry"
        raise ServiceUnavailable(message, retry_after=1)

    monkeypatch.setattr(store, "read", unreachable)
    monkeypatch.setattr(store, "write", unreachable)
    monkeypatch.setattr(store, "current_serial", unreachable)
    for path in ("/+ready", "/+api", "/root/pypi/+simple/pkg/", "/root/dev"):
        response = client.app.get(path, headers={"Accept": "application/json"}, status=503)
        assert response.json["message"] == "the metadata store cannot be reached; please retry"
        assert "X-DEVPI-SERIAL" not in response.headers
