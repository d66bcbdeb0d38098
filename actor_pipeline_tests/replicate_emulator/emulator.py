"""``ReplicateEmulator``: the API server, the TLS output server and the test CA, started together."""

import secrets
import ssl
import tempfile
from pathlib import Path
from types import TracebackType

import trustme

from actor_pipeline_tests.replicate_emulator.account import Account, Behaviour
from actor_pipeline_tests.replicate_emulator.api import handle_api, handle_delivery
from actor_pipeline_tests.replicate_emulator.servers import Server


class ReplicateEmulator:
    """A local Replicate that the real client reaches through ``REPLICATE_BASE_URL``.

    The API is served over plain HTTP; outputs come from an HTTPS server whose certificate is
    signed by a throwaway CA, written to ``ca_path`` for ``SSL_CERT_FILE`` (the client wraps only
    ``https:`` and ``data:`` outputs as files). Faults and counters live on ``account``.
    """

    def __init__(self, port: int = 0, behaviour: Behaviour | None = None, token: str | None = None) -> None:
        self.token = token or f"r8_emulated_{secrets.token_hex(12)}"
        self._workdir = tempfile.TemporaryDirectory(prefix="replicate-emulator-")
        ca = trustme.CA()
        self.ca_path = Path(self._workdir.name) / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_path))
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(tls)
        self._api = Server(port, lambda request: handle_api(self.account, request))
        self._delivery = Server(0, lambda request: handle_delivery(self.account, request), tls)
        self.base_url = f"http://127.0.0.1:{self._api.port}"
        self.account = Account(
            self.token, self.base_url, f"https://127.0.0.1:{self._delivery.port}", behaviour or Behaviour()
        )

    @property
    def behaviour(self) -> Behaviour:
        return self.account.behaviour

    def env(self) -> dict[str, str]:
        """The environment that points the real client at this emulator."""
        return {
            "REPLICATE_BASE_URL": self.base_url,
            "REPLICATE_API_TOKEN": self.token,
            "SSL_CERT_FILE": str(self.ca_path),
        }

    def start(self) -> "ReplicateEmulator":
        self._api.start()
        self._delivery.start()
        return self

    def stop(self) -> None:
        """Release held requests, close every connection, join every thread, delete the CA."""
        self.account.stop()
        self._api.stop()
        self._delivery.stop()
        self._workdir.cleanup()

    def __enter__(self) -> "ReplicateEmulator":
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
