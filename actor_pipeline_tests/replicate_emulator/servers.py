"""Threaded HTTP(S) servers whose every thread and connection is gone after ``stop()``."""

import contextlib
import logging
import socket
import ssl
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from actor_pipeline_tests.replicate_emulator.account import Dropped
from actor_pipeline_tests.replicate_emulator.api import Reply, Request

log = logging.getLogger(__name__)

Handle = Callable[[Request], Reply]
_HANDSHAKE_TIMEOUT_S = 5.0


class Server(ThreadingHTTPServer):
    """One thread per connection (keep-alive, HTTP/1.1), TLS when given a context."""

    daemon_threads = False
    request_queue_size = 128  # the default 5 drops bursts of connects, costing a 1 s SYN retry
    block_on_close = True  # server_close() joins every connection thread

    def __init__(self, port: int, handle: Handle, tls: ssl.SSLContext | None = None) -> None:
        self.handle = handle
        self._tls = tls
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name=f"emulator:{self.port}"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cut every open connection (waking idle keep-alive threads), join all."""
        self.shutdown()
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self._thread:
            self._thread.join()

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        connection, address = self.socket.accept()
        if self._tls is None:
            return connection, address
        connection.settimeout(_HANDSHAKE_TIMEOUT_S)  # a stuck client must not block accept()
        try:
            return self._tls.wrap_socket(connection, server_side=True), address
        except (OSError, ssl.SSLError):
            connection.close()
            raise

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:  # type: ignore[override]
        # A client killed mid-request (the durability tests do that) is not the emulator's fault.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no delayed-ACK stall
    timeout = 120  # an idle keep-alive connection is closed after this
    server: Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        request = Request(self.command, parts.path, dict(parse_qsl(parts.query)), self.headers, self._body())
        try:
            reply = self.server.handle(request)
        except Dropped:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status != 204:
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)
