"""``LocalServer``: an HTTP(S) server on 127.0.0.1 answering each path with a scripted reply
(fixed, redirecting, or stalling and streaming forever), for the portrait fetcher's tests."""

import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
