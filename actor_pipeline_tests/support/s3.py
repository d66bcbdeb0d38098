"""S3 test doubles reachable over real HTTP: moto's server and a fault-injecting proxy.

A pytest plugin: the root conftest registers it (``pytest_plugins``), so its fixtures
(``moto_endpoint``, ``isolated_aws_env``, ``s3_env``, ``fault_proxy``) serve every folder; tests
import only its classes and constants.

``s3_env`` points the process environment (the variables a user sets) at moto with a fresh
bucket, so tests exercise the same code path as a real run.
"""

import http.client
import logging
import os
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import pytest
from moto.moto_server.werkzeug_app import MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

REGION = "us-west-1"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-do-not-print"

# Variables that would otherwise leak the developer's own AWS setup into the tests.
_ISOLATED_PREFIXES = ("AWS_", "ACTOR_PIPELINE_S3_", "ACTOR_PIPELINE_PRESIGN_")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on a free loopback port, for the whole test session.

    moto's S3 app alone: moto's all-services server (``ThreadedMotoServer``) first works out each
    request's service, listing moto's 150 service folders under one lock per request (a
    millisecond of CPU each, seconds per S3 test)."""
    werkzeug_logger = logging.getLogger("werkzeug")
    level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)  # one line per request drowns failure reports
    server = make_server("127.0.0.1", 0, create_backend_app("s3"), threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-s3", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        werkzeug_logger.setLevel(level)


@dataclass(frozen=True)
class S3Env:
    """What ``s3_env`` set up: a fresh bucket on ``endpoint``."""

    endpoint: str
    bucket: str

    def client(self) -> Any:
        """A plain boto3 client on moto, to set up or inspect objects around the code under test."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )


@pytest.fixture
def isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Remove the developer's own AWS setup from the environment: AWS_* and this project's S3
    variables, shared config files and instance metadata (which would also slow tests down)."""
    for name in list(os.environ):
        if name.startswith(_ISOLATED_PREFIXES):
            monkeypatch.delenv(name)
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(nowhere))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def s3_env(moto_endpoint: str, isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> S3Env:
    """A fresh bucket on moto, and the environment a user would set for it, with the seed's
    variable names."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY", ACCESS_KEY)
    monkeypatch.setenv("AWS_ACCESS_SECRET", SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_USER_FILES_BUCKET", bucket)
    env = S3Env(moto_endpoint, bucket)
    env.client().create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return env


@dataclass
class Fault:
    """Answer the next ``times`` matching requests with an error instead of forwarding them."""

    method: str
    path: str  # decoded request path, e.g. "/bucket/key"; "" matches any
    times: int = 1
    status: int = 503
    code: str = "SlowDown"
    drop_connection: bool = False  # close the socket without any response instead


@dataclass(frozen=True)
class Seen:
    method: str
    path: str  # decoded, without the query string
    headers: dict[str, str]
    forwarded: bool


class FaultProxy:
    """An HTTP proxy on loopback that forwards to ``upstream`` except for requests matched by a
    queued ``Fault``, and records every request (``seen``).

    Setting ``down`` (or ``with proxy.outage():``) makes S3 unreachable until it is cleared: every
    request, on a new or a kept-alive connection, is dropped without an answer (recorded in
    ``seen`` as not forwarded), as when an endpoint or its network goes away. Request headers
    named in ``strip`` (lower case) are not forwarded: a server that ignores them."""

    def __init__(self, upstream: str, strip: frozenset[str] = frozenset()) -> None:
        self.upstream = urlsplit(upstream).netloc
        self.strip = strip
        self.down = False
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def fail(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    @contextmanager
    def outage(self) -> Iterator[None]:
        """S3 is unreachable inside the block, and answers again after it."""
        self.down = True
        try:
            yield
        finally:
            self.down = False

    def count(self, method: str, path: str, *, forwarded: bool) -> int:
        """How many ``method`` requests for ``path`` arrived (or were forwarded to upstream)."""
        return self.counts(method, forwarded=forwarded)[path]

    def counts(self, method: str, *, forwarded: bool) -> Counter[str]:
        with self._lock:
            return Counter(s.path for s in self.seen if s.method == method and (s.forwarded or not forwarded))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path in ("", path):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "expect"}


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like S3; botocore pools connections

        def _handle(self) -> None:
            if proxy.down:
                # Unanswered and unread: the client sees its connection reset or closed.
                path = unquote(urlsplit(self.path).path)
                proxy._record(Seen(self.command, path, dict(self.headers), False))
                self.close_connection = True
                return
            if "chunked" in self.headers.get("Transfer-Encoding", ""):
                # Not needed by botocore over plain HTTP; fail loudly if that ever changes.
                self.send_error(501, "chunked request bodies are not supported by FaultProxy")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            path = unquote(urlsplit(self.path).path)
            fault = proxy._take_fault(self.command, path)
            proxy._record(Seen(self.command, path, dict(self.headers), fault is None))
            if fault is None:
                self._forward(body)
            elif fault.drop_connection:
                self.close_connection = True
            else:
                self._reply(fault.status, _error_xml(fault.code).encode(), "application/xml")

        def _forward(self, body: bytes) -> None:
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
            try:
                dropped = _HOP_BY_HOP | proxy.strip
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                upstream.request(self.command, self.path, body, headers)
                response = upstream.getresponse()
                payload = response.read()
                self.send_response_only(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                # A HEAD response announces the object's length but carries no body.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)
            finally:
                upstream.close()

        def _reply(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response_only(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        def log_message(self, format: str, *args: object) -> None:
            pass  # requests are recorded in proxy.seen instead

    return Handler


def _error_xml(code: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>injected by FaultProxy</Message>"
        "<RequestId>fault-proxy</RequestId></Error>"
    )


@pytest.fixture
def fault_proxy(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A ``FaultProxy`` in front of moto, set as the endpoint users configure."""
    proxy = FaultProxy(s3_env.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        proxy.close()
