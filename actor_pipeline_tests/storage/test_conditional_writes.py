"""Issue 20: the S3 lease holds on every server or says why not. Before its first lease a process
checks that the server refuses a second ``If-None-Match: *`` create and a stale ``If-Match``;
moto does, so the lease works there. A server that ignores the headers (a proxy that strips
them before moto) or does not implement them (answers 501) is refused with one line naming its
limit and the fix, before any lease or image is written; ``generate`` then exits 2 with that line."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from actor_pipeline.cli import main
from actor_pipeline.defs.resources import s3_client
from actor_pipeline.errors import ConfigurationError
from actor_pipeline.storage.lease import hold_actor
from actor_pipeline.storage.s3 import LEASE_PROBE_PREFIX, S3Storage
from actor_pipeline.storage.s3_settings import S3Settings
from actor_pipeline_tests.support.s3 import Fault, FaultProxy, S3Env


def storage_at(tmp_path: Path) -> S3Storage:
    settings = S3Settings.from_env()
    assert settings is not None
    return S3Storage(settings, s3_client(settings), tmp_path / "state")


@pytest.fixture
def stripping_proxy(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """moto behind a proxy that drops the conditional headers: a server that ignores them."""
    proxy = FaultProxy(s3_env.endpoint, strip=frozenset({"if-none-match", "if-match"}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        proxy.close()


def test_moto_honours_conditional_writes_and_is_probed_once_per_process(
    fault_proxy: FaultProxy, s3_env: S3Env, tmp_path: Path
) -> None:
    store = storage_at(tmp_path)
    store.check()
    with hold_actor(store, "alice", "first maker"):
        pass
    with hold_actor(storage_at(tmp_path), "bob", "another command of the same process"):
        pass
    probes = [s for s in fault_proxy.seen if s.method == "PUT" and LEASE_PROBE_PREFIX in s.path]
    # One probe: created, created again (refused), written against a stale ETag (refused).
    assert len(probes) == 3, probes
    assert [("If-None-Match" in s.headers, "If-Match" in s.headers) for s in probes] == [
        (True, False),
        (True, False),
        (False, True),
    ]
    assert not [k for k in store.list("_leases/") if ".probe-" in k], "the probe object is left behind"


def test_a_server_ignoring_conditional_writes_is_refused_in_one_line(
    stripping_proxy: FaultProxy, s3_env: S3Env, tmp_path: Path
) -> None:
    store = storage_at(tmp_path)
    with pytest.raises(ConfigurationError) as refused, hold_actor(store, "alice", "maker"):
        pytest.fail("a lease was taken on a server that ignores If-None-Match")
    message = str(refused.value)
    assert "\n" not in message
    assert f"the S3 server at {stripping_proxy.url} ignores If-None-Match: *" in message, message
    assert "AWS S3" in message and "--storage local" in message, message
    assert s3_env.client().list_objects_v2(Bucket=s3_env.bucket).get("KeyCount", 0) == 0, "something was left"
    with pytest.raises(ConfigurationError, match="ignores If-None-Match"):
        store.check()  # the CLI's start-up check says the same, before anything is paid for


def test_a_server_that_does_not_implement_them_is_refused(
    fault_proxy: FaultProxy, s3_env: S3Env, tmp_path: Path
) -> None:
    fault_proxy.fail(Fault("PUT", "", status=501, code="NotImplemented"))
    with pytest.raises(ConfigurationError, match=r"does not implement If-None-Match: \* \(NotImplemented\)"):
        storage_at(tmp_path).check()


def test_generate_on_such_a_server_ends_in_one_line_before_anything_is_paid(
    stripping_proxy: FaultProxy, s3_env: S3Env, tmp_path: Path, portrait_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["generate", str(portrait_file), "--actor-id", "alice", "--out", str(tmp_path / "local")])
    stderr = capsys.readouterr().err.strip().splitlines()
    assert code == 2, stderr
    assert "ignores If-None-Match: *" in stderr[-1] and "Traceback" not in "\n".join(stderr), stderr
    assert s3_env.client().list_objects_v2(Bucket=s3_env.bucket).get("KeyCount", 0) == 0  # nothing stored, or paid
