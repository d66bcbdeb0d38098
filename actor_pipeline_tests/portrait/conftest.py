"""Fixtures for portrait tests: local HTTP and HTTPS servers with scripted replies (``LocalServer``)."""

import ssl
from collections.abc import Iterator
from typing import Any

import pytest

from actor_pipeline_tests.portrait.http_server import LocalServer


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
