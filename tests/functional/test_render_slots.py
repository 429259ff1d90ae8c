"""Cold renders are bounded: a render holds its page's links and the page being built, and uv
asks for dozens of cold pages at once; more renders in parallel would only hold more memory
(the work is Python under the GIL)."""

from __future__ import annotations

import threading
import time

from devpi_core import simple_pages
from devpi_core.testing.dists import DistSpec, make_wheel


def test_at_most_two_cold_pages_are_rendered_at_once(make_app, fake_upstream, monkeypatch):
    client = make_app()
    client.create_and_login("bob")
    client.create_index("bob/mirror", type="mirror", mirror_url=fake_upstream.url)
    inside: list[str] = []
    lock, release = threading.Lock(), threading.Event()
    original = simple_pages.SimplePages._render

    def held(self, record, project, *args, **kwargs):
        with lock:
            inside.append(project)
        release.wait(10)
        return original(self, record, project, *args, **kwargs)

    monkeypatch.setattr(simple_pages.SimplePages, "_render", held)
    names = [f"p{i}" for i in range(4)]
    wheels = {name: make_wheel(DistSpec(name, "1.0")) for name in names}
    for name, wheel in wheels.items():
        fake_upstream.add(name, wheel)
    pages: dict[str, list[str]] = {}

    def ask(name: str) -> None:
        page = client.simple("bob/mirror", name, json_api=True).json
        pages[name] = [f["filename"] for f in page["files"]]

    threads = [threading.Thread(target=ask, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(inside) < 2 and time.monotonic() < deadline:
        threads[0].join(0.01)
    for thread in threads:
        thread.join(0.05)  # the others had time to enter if nothing held them back
    assert len(inside) == 2
    release.set()
    for thread in threads:
        thread.join(10)
    assert sorted(inside) == names
    assert pages == {name: [wheels[name].filename] for name in names}
