"""Read a portrait's bytes from a local path or an http(s) URL (s3:// through a pluggable
reader), bounded in size, time and redirects, without letting a URL reach internal addresses.

URL fetching resolves the host itself, refuses it if any of its addresses is loopback, private,
link-local (the cloud metadata service 169.254.169.254), multicast or reserved, then connects to
one of exactly those checked addresses, keeping the host name for the ``Host`` header, TLS SNI
and certificate verification. A DNS answer that changes between check and connect (DNS
rebinding) therefore cannot redirect the request. Every redirect hop is checked the same way.

Residual risks, documented rather than handled: name resolution uses the system resolver, whose
own timeout (usually 5-10 s per attempt) is not bounded by ``PortraitLimits``; the connect
timeout applies per address tried; proxy environment variables are ignored (a proxy would
resolve the host itself, defeating the check), so fetching needs direct internet access.

Local paths read any file the process can read: accept them only from trusted input (the CLI,
a drop folder), never from a remote user.
"""

import contextlib
import ipaddress
import os
import socket
import ssl
import stat
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from actor_pipeline.errors import PortraitError
from actor_pipeline.portrait.limits import DEFAULT_LIMITS, PortraitLimits
from actor_pipeline.portrait.normalize import sniff_format

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Besides image/*: what object stores and plain web servers label files they know nothing about.
_UNTYPED_MEDIA_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
_REQUEST_HEADERS = {
    # Listing the formats keeps content-negotiating CDNs from answering with AVIF.
    "Accept": "image/jpeg, image/png, image/webp, image/gif, image/bmp, image/tiff, */*;q=0.1",
    # Images are already compressed; a compressed body could expand past max_bytes in one chunk.
    "Accept-Encoding": "identity",
    "User-Agent": "actor-pipeline portrait fetcher",
}


def read_portrait_source(
    source: str,
    limits: PortraitLimits = DEFAULT_LIMITS,
    s3_reader: Callable[[str], bytes] | None = None,
) -> bytes:
    """The bytes of the portrait at ``source``: a local path, an http(s) URL, or an ``s3://``
    URL read by ``s3_reader``.

    The bytes are at most ``limits.max_bytes`` long and start like a supported image format
    (decoding is ``normalize_portrait``'s job). Raises ``PortraitError`` naming the problem and
    the fix; messages never contain a URL's user info or query string.
    """
    try:
        scheme = urllib.parse.urlsplit(source).scheme.lower()
    except ValueError:  # e.g. an unclosed "[" in the host
        raise PortraitError("portrait URL is malformed: check it") from None
    if scheme in ("http", "https"):
        return _fetch_url(source, limits)
    if scheme == "s3":
        if s3_reader is None:
            raise PortraitError(
                "s3:// portrait sources need S3 configured: set up S3 storage, or give a local path or an https URL"
            )
        data = s3_reader(source)
        _check_bytes(data, f"portrait {redact_source(source)}", limits)
        return data
    if scheme:
        raise PortraitError(
            f"portrait source scheme {scheme}: is not supported: give a local path, an http(s) "
            "URL or an s3:// URL (write a local file name containing ':' as ./name)"
        )
    return _read_file(Path(source).expanduser(), limits)


def redact_source(source: str | httpx.URL) -> str:
    """A portrait source fit to log or store: a URL without user info, query or fragment, which
    can hold passwords and signatures (a removed query shows as ``?...`` so the reader knows
    there was one); a local path as it is."""
    try:
        parts = urllib.parse.urlsplit(str(source))
    except ValueError:
        return "(malformed URL)"
    if len(parts.scheme) <= 1:  # a local path (or a Windows drive letter)
        return str(source)
    netloc = parts.netloc.rpartition("@")[2]
    redacted = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return redacted + "?..." if parts.query else redacted


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Addresses of ``host`` from the system resolver, in its order, without duplicates. IP
    literals are returned as they are, without a lookup."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, multicast, reserved, unspecified, shared
    (100.64/10) and the other special-purpose ranges; IPv4 tunnelled in IPv6 (mapped, 6to4) is
    judged by its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        address = address.ipv4_mapped or address.sixtofour or address
    # is_global excludes every special-purpose range except multicast and some reserved IPv6.
    return address.is_global and not (address.is_multicast or address.is_reserved)


def _read_file(path: Path, limits: PortraitLimits) -> bytes:
    subject = f"portrait file {path}"
    try:
        # Non-blocking, so that a FIFO at the path cannot hang us; checked after opening, so
        # that the file checked is the file read.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise PortraitError(f"{subject} is not a regular file: give the path of an image")
            if info.st_size > limits.max_bytes:
                raise _too_large(subject, limits)
            with os.fdopen(fd, "rb", closefd=False) as file:
                data = file.read(limits.max_bytes + 1)  # the file may have grown since fstat
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise PortraitError(f"portrait file not found: {path}: check the path") from None
    except PermissionError:
        raise PortraitError(f"{subject} is not readable: check its permissions") from None
    except OSError as exc:
        raise PortraitError(f"{subject} could not be read ({exc.strerror}): check the path") from exc
    _check_bytes(data, subject, limits)
    return data


def _fetch_url(url: str, limits: PortraitLimits) -> bytes:
    deadline = time.monotonic() + limits.fetch_deadline_s
    subject = f"portrait URL {redact_source(url)}"
    current = _http_url(url, subject)
    with _http_client(limits) as client:
        for _ in range(limits.max_redirects + 1):
            _check_deadline(deadline, subject, limits)
            with _network_errors(subject, limits):
                addresses = _allowed_addresses(current, subject, limits)
                with contextlib.closing(_send(client, current, addresses)) as response:
                    if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                        current = _http_url(response.headers["location"], subject, base=current)
                        redirected = f" (redirected to {redact_source(current)})"
                        subject = f"portrait URL {redact_source(url)}{redirected}"
                        continue
                    if not response.is_success:
                        raise PortraitError(
                            f"{subject} answered HTTP {response.status_code} "
                            f"{response.reason_phrase}: check the link opens the image in a "
                            "browser and has not expired"
                        )
                    data = _read_body(response, subject, limits, deadline)
            image_format = _check_bytes(data, subject, limits)
            media_type = response.headers.get("content-type", "").partition(";")[0].strip().lower()
            if not (media_type.startswith("image/") or media_type in _UNTYPED_MEDIA_TYPES):
                raise PortraitError(
                    f"{subject} sent {image_format} data labelled {media_type}: fix the server's "
                    "Content-Type, or download the image and give the file"
                )
            return data
    raise PortraitError(
        f"portrait URL {redact_source(url)} redirected more than {limits.max_redirects} times: link the image file itself"
    )


def _http_client(limits: PortraitLimits, verify: ssl.SSLContext | bool = True) -> httpx.Client:
    """The client for one fetch. ``verify`` lets tests trust their own certificate authority."""
    return httpx.Client(
        timeout=httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s),
        headers=_REQUEST_HEADERS,
        verify=verify,
        # No proxies from the environment (see the module docstring) and no .netrc passwords
        # sent to whatever host a portrait URL names.
        trust_env=False,
    )


def _http_url(url: str, subject: str, base: httpx.URL | None = None) -> httpx.URL:
    """``url`` (relative to ``base`` if given) parsed, if it is an http(s) URL."""
    try:
        parsed = base.join(url) if base else httpx.URL(url)
    except httpx.InvalidURL:
        raise PortraitError(f"{subject} is malformed: check the URL") from None
    if parsed.scheme not in ("http", "https"):
        raise PortraitError(
            f"{subject} leads to a {parsed.scheme or 'relative'} URL: only http and https "
            "portrait URLs are fetched; link the image file itself"
        )
    if not parsed.host:
        raise PortraitError(f"{subject} has no host name: check the URL")
    return parsed


def _allowed_addresses(url: httpx.URL, subject: str, limits: PortraitLimits) -> list[IPAddress]:
    """The addresses ``url``'s host resolves to; all of them must be public unless the limits
    allow private ones (one bad address refuses the host, as it could be the one used)."""
    host = url.raw_host.decode("ascii")
    try:
        addresses = resolve_host(host, url.port or (443 if url.scheme == "https" else 80))
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        raise PortraitError(f"{subject}: the host {host} could not be resolved: check the URL")
    if not limits.allow_private_addresses:
        refused = [address for address in addresses if not is_public_address(address)]
        if refused:
            raise PortraitError(
                f"{subject}: the host resolves to {refused[0]}, which is not a public address "
                "(loopback, private, link-local, multicast or reserved): link an image on a "
                "public server"
            )
    return addresses


def _send(client: httpx.Client, url: httpx.URL, addresses: list[IPAddress]) -> httpx.Response:
    """GET ``url`` from the first of ``addresses`` that accepts a connection. Only the TCP
    destination changes: ``Host``, SNI and the certificate check still use the URL's host."""
    headers = {"Host": url.netloc.decode("ascii")}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}

    def get(address: IPAddress) -> httpx.Response:
        request = client.build_request("GET", url.copy_with(host=str(address)), headers=headers, extensions=extensions)
        return client.send(request, stream=True)

    *fallbacks, last = addresses
    for address in fallbacks:
        with contextlib.suppress(httpx.ConnectError, httpx.ConnectTimeout):
            return get(address)
    return get(last)


def _read_body(response: httpx.Response, subject: str, limits: PortraitLimits, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.max_bytes:
        raise _too_large(subject, limits)
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise PortraitError(
            f"{subject} was sent {encoding}-compressed although an uncompressed image was "
            "asked for: link the image file directly"
        )
    body = bytearray()
    for chunk in response.iter_raw():
        body += chunk
        if len(body) > limits.max_bytes:
            raise _too_large(subject, limits)
        _check_deadline(deadline, subject, limits)
    return bytes(body)


def _check_deadline(deadline: float, subject: str, limits: PortraitLimits) -> None:
    if time.monotonic() > deadline:
        raise PortraitError(
            f"{subject} took longer than {limits.fetch_deadline_s:g} s to download: try again, or host the image "
            "somewhere faster"
        )


@contextlib.contextmanager
def _network_errors(subject: str, limits: PortraitLimits) -> Iterator[None]:
    """httpx exceptions -> ``PortraitError``. httpx messages never contain the URL."""
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise PortraitError(
            f"{subject} did not accept a connection within {limits.connect_timeout_s:g} s: check the host is up"
        ) from exc
    except httpx.TimeoutException as exc:
        raise PortraitError(f"{subject} stopped responding for {limits.read_timeout_s:g} s: try again later") from exc
    except httpx.ConnectError as exc:
        raise PortraitError(f"{subject} could not be reached ({exc}): check the URL and that the server is up") from exc
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise PortraitError(f"{subject} could not be downloaded ({exc}): try again") from exc


def _check_bytes(data: bytes, subject: str, limits: PortraitLimits) -> str:
    """The image format ``data`` starts with, if it is within the size limit."""
    if len(data) > limits.max_bytes:
        raise _too_large(subject, limits)
    return sniff_format(data, subject)


def _too_large(subject: str, limits: PortraitLimits) -> PortraitError:
    return PortraitError(
        f"{subject} is larger than the {limits.max_bytes / 1e6:.1f} MB limit: export it as a JPEG or scale it down"
    )
