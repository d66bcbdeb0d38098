"""read_portrait_source against local files and a local HTTP(S) server with hostile replies."""

import contextlib
import functools
import gzip
import ipaddress
import os
import re
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest

from actor_pipeline.errors import PortraitError
from actor_pipeline.portrait import fetch
from actor_pipeline.portrait.fetch import is_public_address, read_portrait_source, redact_source, resolve_host
from actor_pipeline.portrait.limits import PortraitLimits
from actor_pipeline_tests.portrait.http_server import LocalServer
from actor_pipeline_tests.support.images import encode, quadrants

JPEG = encode(quadrants(), "JPEG")
LOCAL = PortraitLimits(allow_private_addresses=True, connect_timeout_s=2, read_timeout_s=2, fetch_deadline_s=5)
"""Limits for the local test server: loopback allowed, short timeouts."""


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Host name -> addresses answered by ``resolve_host``; other names do not resolve."""
    table: dict[str, list[str]] = {}

    def resolve(host: str, port: int) -> list[Any]:
        with contextlib.suppress(ValueError):
            return [ipaddress.ip_address(host)]
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(address) for address in table[host]]

    monkeypatch.setattr(fetch, "resolve_host", resolve)
    return table


def refused(source: str, match: str, limits: PortraitLimits = LOCAL, **kwargs: Any) -> str:
    with pytest.raises(PortraitError, match=match) as raised:
        read_portrait_source(source, limits, **kwargs)
    return str(raised.value)


# Local files


def test_local_file(tmp_path: Path) -> None:
    path = tmp_path / "me.jpg"
    path.write_bytes(JPEG)
    assert read_portrait_source(str(path)) == JPEG


def test_local_file_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jpg"
    refused(str(missing), f"^{re.escape(f'portrait file not found: {missing}: check the path')}$")
    refused(str(tmp_path), "is not a regular file")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    refused(str(fifo), "is not a regular file")  # and does not block waiting for a writer
    page = tmp_path / "page.jpg"
    page.write_bytes(b"<html><body>hi</body></html>")
    refused(str(page), f"^{re.escape(f'portrait file {page} looks like HTML')}")


def test_local_file_size_is_checked_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.jpg"
    with path.open("wb") as file:
        file.truncate(31_000_000)  # sparse: no disk used

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was read")

    monkeypatch.setattr(os, "fdopen", no_reading)
    refused(str(path), "is larger than the 30.0 MB limit")


# Schemes


@pytest.mark.parametrize(
    "source",
    ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://example.com/", "data:image/png;base64,AAAA",
     "javascript:alert(1)"],
)  # fmt: skip
def test_other_schemes_are_refused(source: str) -> None:
    refused(source, "scheme .* is not supported: give a local path, an http\\(s\\) URL or an s3:// URL")


def test_s3_sources_go_to_the_s3_reader() -> None:
    refused("s3://bucket/me.jpg", "^s3:// portrait sources need S3 configured")
    assert read_portrait_source("s3://bucket/me.jpg", s3_reader={"s3://bucket/me.jpg": JPEG}.__getitem__) == JPEG
    refused(
        "s3://bucket/me.jpg?versionId=1",
        r"^portrait s3://bucket/me.jpg\?\.\.\. looks like JSON",
        s3_reader=lambda _: b"{}",
    )


# HTTP


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream", None])
def test_image_download(http_server: LocalServer, content_type: str | None) -> None:
    assert read_portrait_source(http_server.reply("/me.jpg", JPEG, content_type=content_type), LOCAL) == JPEG


@pytest.mark.parametrize(
    ("body", "content_type", "match"),
    [
        (b"<!doctype html><html>Login</html>", "text/html", "looks like HTML, not an image: the URL probably points"),
        (b"<!doctype html><html>Login</html>", "image/jpeg", "looks like HTML"),
        (b'{"url": "https://cdn/x.jpg"}', "application/json", "looks like JSON"),
        (JPEG, "text/plain", "sent JPEG data labelled text/plain: fix the server's Content-Type"),
        (b"", "image/jpeg", "is empty"),
    ],
)  # fmt: skip
def test_content_type_is_checked_against_the_bytes(
    http_server: LocalServer, body: bytes, content_type: str, match: str
) -> None:
    refused(http_server.reply("/x", body, content_type=content_type), f"^portrait URL http://127.0.0.1:\\d+/x {match}")


def test_http_errors_name_the_status(http_server: LocalServer) -> None:
    refused(http_server.url("/missing"), "answered HTTP 404 Not Found: check the link")


def test_redirects_are_followed(http_server: LocalServer) -> None:
    http_server.reply("/me.jpg", JPEG)
    http_server.redirect("/short", "/hop")
    http_server.redirect("/hop", http_server.url("/me.jpg"), status=301)
    assert read_portrait_source(http_server.url("/short"), LOCAL) == JPEG


def test_redirects_are_bounded(http_server: LocalServer) -> None:
    http_server.redirect("/loop", "/loop")
    refused(http_server.url("/loop"), "redirected more than 5 times")
    assert len(http_server.requests) == 6
    http_server.reply("/me.jpg", JPEG)
    http_server.redirect("/once", "/me.jpg")
    refused(
        http_server.url("/once"),
        "redirected more than 0 times",
        PortraitLimits(allow_private_addresses=True, max_redirects=0),
    )


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://127.0.0.1:70/"])
def test_redirects_to_other_schemes_are_refused(http_server: LocalServer, location: str) -> None:
    refused(http_server.redirect("/r", location), "leads to a (file|gopher) URL: only http and https")


def test_credentials_are_not_forwarded_to_another_host(http_server: LocalServer) -> None:
    http_server.reply("/me.jpg", JPEG)
    http_server.redirect("/private", http_server.url("/me.jpg", host="localhost"))
    assert read_portrait_source(http_server.url("/private", host="user:pw@127.0.0.1"), LOCAL) == JPEG
    (_, first), (_, second) = http_server.requests
    assert first["Authorization"].startswith("Basic ")
    assert "Authorization" not in second


# Address checks


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "255.255.255.255", "[::1]", "[fe80::1]", "[fc00::1]", "[ff02::1]", "[::ffff:127.0.0.1]",
     "[2002:7f00:1::]"],
)  # fmt: skip
def test_internal_addresses_are_refused_by_default(host: str) -> None:
    message = refused(f"http://{host}:9/latest/meta-data/", "is not a public address", PortraitLimits())
    assert "loopback, private, link-local, multicast or reserved" in message


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


def test_the_real_resolver_handles_names_and_literals() -> None:
    assert ipaddress.ip_address("127.0.0.1") in resolve_host("localhost", 80)
    assert resolve_host("::1", 80) == [ipaddress.ip_address("::1")]


def test_every_resolved_address_is_checked(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.test"] = ["8.8.8.8", "10.0.0.7"]
    refused("http://mixed.test/a.jpg", "resolves to 10.0.0.7, which is not a public address", PortraitLimits())


def test_unresolvable_hosts(fake_dns: dict[str, list[str]]) -> None:
    refused("http://nowhere.test/a.jpg", "the host nowhere.test could not be resolved", PortraitLimits())


def test_every_redirect_hop_is_checked(
    http_server: LocalServer, fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Treat the test server as public so that the first hop is allowed under production limits.
    monkeypatch.setattr(fetch, "is_public_address", lambda address: str(address) == "127.0.0.1")
    fake_dns.update({"public.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]})
    http_server.reply("/me.jpg", JPEG)
    assert read_portrait_source(http_server.url("/me.jpg", host="public.test"), PortraitLimits()) == JPEG
    for target in ("http://169.254.169.254/latest/meta-data/", "http://metadata.test/latest/"):
        http_server.redirect("/steal", target)
        message = refused(
            http_server.url("/steal", host="public.test"), "redirected to http://.*169.254.169.254", PortraitLimits()
        )
        assert "is not a public address" in message


def test_connection_goes_to_the_checked_address(http_server: LocalServer, fake_dns: dict[str, list[str]]) -> None:
    """DNS rebinding: the request is sent to the address that was checked, under the URL's name."""
    fake_dns["pinned.test"] = ["127.0.0.1"]
    http_server.reply("/me.jpg", JPEG)
    assert read_portrait_source(http_server.url("/me.jpg", host="pinned.test"), LOCAL) == JPEG
    ((_, headers),) = http_server.requests
    assert headers["Host"] == f"pinned.test:{http_server.port}"


def test_https_keeps_sni_and_certificate_check_on_the_host_name(
    https_server: LocalServer, tls_ca: Any, fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    client_context = ssl.create_default_context()
    tls_ca.configure_trust(client_context)
    monkeypatch.setattr(fetch, "_http_client", functools.partial(fetch._http_client, verify=client_context))
    fake_dns.update({"pinned.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    https_server.reply("/me.jpg", JPEG)
    assert read_portrait_source(https_server.url("/me.jpg", host="pinned.test"), LOCAL) == JPEG
    # Same address, a name the certificate does not cover: verification must fail.
    refused(https_server.url("/me.jpg", host="other.test"), "could not be reached .*CERTIFICATE_VERIFY_FAILED")


def test_a_closed_port_is_reported() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused(f"http://127.0.0.1:{port}/a.jpg", "could not be reached .*check the URL and that the server is up")


# Size and time limits


def test_byte_limit_is_enforced_while_streaming(http_server: LocalServer) -> None:
    url = http_server.stream("/endless", b"\xff\xd8\xff" + bytes(65_533))
    refused(url, "is larger than the 1.0 MB limit", PortraitLimits(allow_private_addresses=True, max_bytes=1_000_000))


def test_declared_length_over_the_limit_is_refused_before_reading(http_server: LocalServer) -> None:
    url = http_server.reply("/big", JPEG)
    refused(url, "is larger than", PortraitLimits(allow_private_addresses=True, max_bytes=len(JPEG) - 1))


def test_compressed_bodies_are_refused(http_server: LocalServer) -> None:
    url = http_server.reply("/gz", gzip.compress(JPEG), Content_Encoding="gzip")
    refused(url, "was sent gzip-compressed")
    ((_, headers),) = http_server.requests
    assert headers["Accept-Encoding"] == "identity"


def test_read_timeout(http_server: LocalServer) -> None:
    url = http_server.stream("/stall", JPEG, delay=2.0)
    limits = PortraitLimits(allow_private_addresses=True, read_timeout_s=0.2)
    refused(url, "stopped responding for 0.2 s: try again later", limits)


def test_total_deadline_stops_a_trickling_server(http_server: LocalServer) -> None:
    url = http_server.stream("/trickle", b"\xff", interval=0.02)
    limits = PortraitLimits(allow_private_addresses=True, read_timeout_s=1.0, fetch_deadline_s=0.3)
    refused(url, "took longer than 0.3 s to download", limits)


# Secrets in URLs


def test_errors_never_show_credentials_or_query_strings(http_server: LocalServer) -> None:
    url = http_server.url("/missing?X-Amz-Signature=s3cr3t&X-Amz-Credential=AKIA", host="alice:hunter2@127.0.0.1")
    message = refused(url, "answered HTTP 404")
    assert "s3cr3t" not in message and "AKIA" not in message and "hunter2" not in message and "alice" not in message
    assert f"http://127.0.0.1:{http_server.port}/missing?..." in message


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://u:p@cdn.example.com:8443/a/b.jpg?sig=x#frag", "https://cdn.example.com:8443/a/b.jpg?..."),
        ("https://cdn.example.com/a.jpg", "https://cdn.example.com/a.jpg"),
        ("http://[::1]:80/a", "http://[::1]:80/a"),
        ("http://[::1", "(malformed URL)"),
        ("/home/me/portrait.jpg", "/home/me/portrait.jpg"),
        (r"C:\portraits\me.jpg", r"C:\portraits\me.jpg"),
    ],
)
def test_redact_source(url: str, redacted: str) -> None:
    assert redact_source(url) == redacted
