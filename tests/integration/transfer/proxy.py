"""A misbehaving front for a real ``docker-registry``: redirects, 500s, trickles.

:class:`RegistryProxy` forwards every request to the registry behind it, except
that a ``GET`` of a blob (and of a manifest by digest, with
``redirect_manifests``) can be answered as real registries with an object
store do — a ``307`` to storage — or as a flaky one does::

    proxy = RegistryProxy(registry.host)
    proxy.redirect = "absolute"      # 307 Location: http://<registry>/v2/...
    proxy.redirect = "relative"      # 307 Location: /storage/v2/... (served by the proxy)
    proxy.redirect = "loop"          # 307 Location: the same URL, for ever
    proxy.fail[digest] = 2           # the next two GETs of that digest answer 500
    proxy.slow.add(digest)           # that blob trickles out (16 KiB per 50 ms)

``requests`` (of the underlying :class:`FakeServer`) records what arrived and
``answers`` the status the proxy gave to each ``GET``/``HEAD``.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import threading
import time

from tests.integration.remotes.registry import FakeServer, reply

_CONTENT = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>blobs|manifests)/(?P<ref>[^/?]+)")
_FORWARDED = ("accept", "range", "authorization", "content-type", "accept-encoding")
_KEPT = ("content-type", "docker-content-digest", "content-range", "location", "www-authenticate")
STORAGE = "/storage"
"""Prefix of the proxy's own "storage" URLs (the target of relative redirects)."""

TRICKLE = 16 * 1024
TRICKLE_DELAY = 0.05


class RegistryProxy:
    """Forwards to ``upstream`` (``host:port``), misbehaving as configured.

    Attributes:
        redirect: ``""``, ``"absolute"``, ``"relative"`` or ``"loop"``: how blob GETs
            are answered.
        redirect_manifests: also redirect ``GET manifests/<digest>``.
        fail: digest → how many more GETs of it answer ``500``.
        slow: digests whose body trickles out.
        streamed: digest → bytes of it written so far (slow blobs).
        progressed: set once a slow blob has streamed ``progress_mark`` bytes.
        answers: ``(method, path, status)`` of every GET and HEAD answered.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.redirect = ""
        self.redirect_manifests = False
        self.fail: dict[str, int] = {}
        self.slow: set[str] = set()
        self.streamed: dict[str, int] = {}
        self.progress_mark = 192 * 1024
        self.progressed = threading.Event()
        self.fail_head = 0
        """How many more ``HEAD manifests/...`` answer 500."""
        self.hold_failures = False
        """Delay each 500 until a slow blob has streamed ``progress_mark`` bytes."""
        self.answers: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self.server = FakeServer(self)
        self.host = self.server.host

    def close(self) -> None:
        self.server.close()

    def __call__(self, request: http.server.BaseHTTPRequestHandler, method: str, path: str) -> None:
        if path.startswith(STORAGE + "/"):
            self._forward(request, method, path.removeprefix(STORAGE), path)
            return
        match = _CONTENT.match(path)
        if match is not None and method == "HEAD" and match["kind"] == "manifests":
            with self._lock:
                failing = self.fail_head > 0
                self.fail_head -= int(failing)
            if failing:
                self._answer(request, method, path, 500, b"")
                return
        if match is None or method != "GET":
            self._forward(request, method, path, path)
            return
        ref = match["ref"]
        with self._lock:
            failing = self.fail.get(ref, 0) > 0
            if failing:
                self.fail[ref] -= 1
        if failing:
            if self.hold_failures:
                self.progressed.wait(20)
            body = {"errors": [{"code": "UNKNOWN", "message": "storage backend flaked"}]}
            self._answer(request, method, path, 500, json.dumps(body).encode())
            return
        redirected = match["kind"] == "blobs" or (
            self.redirect_manifests and ref.startswith("sha256:")
        )
        if self.redirect and redirected:
            location = {
                "absolute": f"http://{self.upstream}{path}",
                "relative": STORAGE + path,
                "loop": path,
            }[self.redirect]
            self._answer(request, method, path, 307, b"", {"Location": location})
            return
        self._forward(request, method, path, path)

    def _answer(
        self,
        request: http.server.BaseHTTPRequestHandler,
        method: str,
        path: str,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        with self._lock:
            self.answers.append((method, path, status))
        content = {"Content-Type": "application/json"} if body else {}
        reply(request, status, body, {**content, **(headers or {})})

    def _forward(
        self,
        request: http.server.BaseHTTPRequestHandler,
        method: str,
        upstream_path: str,
        path: str,
    ) -> None:
        headers = {k: v for k, v in request.headers.items() if k.lower() in _FORWARDED}
        length = int(request.headers.get("Content-Length", "0") or "0")
        body = request.rfile.read(length) if length else None
        conn = http.client.HTTPConnection(self.upstream, timeout=20)
        try:
            conn.request(method, upstream_path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            upstream_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            conn.close()
        with self._lock:
            self.answers.append((method, path, response.status))
        request.send_response(response.status)
        for name in _KEPT:
            if name in upstream_headers:
                request.send_header(name, upstream_headers[name])
        request.send_header("Content-Length", upstream_headers.get("content-length", "0"))
        request.end_headers()
        if method == "HEAD":
            return
        match = _CONTENT.match(upstream_path)
        digest = "" if match is None else match["ref"]
        if digest not in self.slow:
            request.wfile.write(data)
            return
        try:
            for offset in range(0, len(data), TRICKLE):
                request.wfile.write(data[offset : offset + TRICKLE])
                request.wfile.flush()
                with self._lock:
                    self.streamed[digest] = self.streamed.get(digest, 0) + len(
                        data[offset : offset + TRICKLE]
                    )
                    if self.streamed[digest] >= self.progress_mark:
                        self.progressed.set()
                time.sleep(TRICKLE_DELAY)
        except OSError:
            pass  # the client went away (a failed or cancelled pull)
