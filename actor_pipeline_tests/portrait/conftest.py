"""Fixtures for portrait tests: crafted images and a local HTTP(S) server with scripted replies."""

import io
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

QUADRANT_COLOURS = ((220, 30, 30), (30, 200, 30), (30, 30, 220), (240, 240, 240))
"""Top-left, top-right, bottom-left, bottom-right of ``quadrants``: orientation is visible."""


def quadrants(width: int = 300, height: int = 400) -> Image.Image:
    """A test picture with four coloured quadrants, so rotations and flips can be detected."""
    image = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    boxes = (
        (0, 0, half_w, half_h),
        (half_w, 0, width, half_h),
        (0, half_h, half_w, height),
        (half_w, half_h, width, height),
    )
    for box, colour in zip(boxes, QUADRANT_COLOURS, strict=True):
        image.paste(colour, box)
    return image


def encode(image: Image.Image, image_format: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


Route = Callable[[BaseHTTPRequestHandler], None]


class LocalServer:
    """An HTTP(S) server on 127.0.0.1 answering each path with a scripted ``Route``.

    Routes may stall or stream forever: they stop when the client hangs up or after
    ``MAX_ROUTE_SECONDS``, so a failing test cannot hang the suite.
    """

    MAX_ROUTE_SECONDS = 5.0

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []  # (path, headers) as received
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.owner = self  # type: ignore[attr-defined]
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def reply(
        self, path: str, body: bytes, status: int = 200, content_type: str | None = "image/jpeg", **headers: str
    ) -> str:
        """Answer ``path`` with a fixed response; returns its URL."""

        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            if content_type is not None:
                handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                handler.send_header(name.replace("_", "-"), value)
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = route
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        return self.reply(path, b"", status=status, content_type=None, Location=location)

    def stream(self, path: str, chunk: bytes, interval: float = 0.0, delay: float = 0.0) -> str:
        """Answer ``path`` after ``delay`` s with an endless body of ``chunk``s, one every
        ``interval`` s, without a Content-Length."""

        def route(handler: BaseHTTPRequestHandler) -> None:
            time.sleep(delay)
            handler.send_response(200)
            handler.send_header("Content-Type", "image/jpeg")
            handler.end_headers()
            stop = time.monotonic() + self.MAX_ROUTE_SECONDS
            while time.monotonic() < stop:
                handler.wfile.write(chunk)
                handler.wfile.flush()
                time.sleep(interval)

        self.routes[path] = route
        return self.url(path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        owner: LocalServer = self.server.owner  # type: ignore[attr-defined]
        owner.requests.append((self.path, dict(self.headers)))
        route = owner.routes.get(urllib.parse.urlsplit(self.path).path)
        try:
            if route is None:
                self.send_error(404)
            else:
                route(self)
        except OSError:  # the client hung up: byte limit, timeout or deadline reached
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def tls_ca() -> Any:
    """A throwaway certificate authority (``trustme.CA``)."""
    return pytest.importorskip("trustme").CA()


@pytest.fixture
def https_server(tls_ca: Any) -> Iterator[LocalServer]:
    """An HTTPS server whose certificate is valid for ``pinned.test`` only."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("pinned.test").configure_cert(context)
    server = LocalServer(tls=context)
    yield server
    server.close()
