"""Release files stored in S3 (moto): proxied with Range by default, or a presigned redirect."""

from __future__ import annotations

import urllib.request

from devpi_core.testing.dists import DistSpec, make_wheel

SPEC = DistSpec("s3pkg", "1.0")


def s3_app(make_app, s3_server, **settings):
    bucket = s3_server.new_bucket()
    config = {
        "storage": {"blobs": "s3"},
        "plugins": {"s3store": s3_server.settings(bucket, **settings)},
    }
    client = make_app(config)
    client.create_and_login("alice")
    client.create_index("alice/dev")
    wheel = make_wheel(SPEC, padding=20_000)
    client.upload("alice/dev", wheel)
    links = client.get_json("/alice/dev/s3pkg/1.0")["result"]["+links"]
    href = next(link["href"] for link in links if link["rel"] == "releasefile")
    return client, bucket, wheel, href.replace("http://localhost", "")


def test_files_are_stored_in_s3_and_proxied_with_range(make_app, s3_server):
    client, bucket, wheel, href = s3_app(make_app, s3_server)
    listed = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
    assert f"sha256/{wheel.sha256[:2]}/{wheel.sha256[2:4]}/{wheel.sha256}" in [
        o["Key"] for o in listed
    ]
    response = client.app.get(href)
    assert response.body == wheel.content
    assert response.headers["ETag"] == f'"{wheel.sha256}"'
    size, mid = len(wheel.content), len(wheel.content) // 2
    part = client.app.get(href, headers={"Range": f"bytes={mid}-{mid + 9}"}, status=206)
    assert part.body == wheel.content[mid : mid + 10]
    assert part.headers["Content-Range"] == f"bytes {mid}-{mid + 9}/{size}"
    tail = client.app.get(href, headers={"Range": "bytes=-7"}, status=206)
    assert tail.body == wheel.content[-7:]
    assert client.app.head(href).headers["Content-Length"] == str(size)
    client.app.get(href, headers={"If-None-Match": f'"{wheel.sha256}"'}, status=304)
    assert client.app.get("/+ready").json["checks"] == {"metadata": "ok", "blobs": "ok"}


def test_redirect_mode_sends_clients_to_a_presigned_url(make_app, s3_server):
    client, _bucket, wheel, href = s3_app(make_app, s3_server, serve="redirect", presign_expiry=60)
    response = client.app.get(href, status=302)
    location = response.headers["Location"]
    assert location.startswith(f"{s3_server.endpoint}/")
    assert "X-Amz-Expires=60" in location
    assert "Content-Type" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    with urllib.request.urlopen(location, timeout=30) as got:
        assert got.read() == wheel.content
        assert wheel.filename in got.headers["Content-Disposition"]


def test_not_ready_without_the_bucket(make_app, s3_server):
    missing = make_app({"storage": {"blobs": "s3"},
                        "plugins": {"s3store": s3_server.settings("no-such-bucket")}})
    response = missing.app.get("/+ready", status=503)
    assert response.json["ready"] is False
    assert response.json["checks"] == {"metadata": "ok", "blobs": "error: OSError"}
