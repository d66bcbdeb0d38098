"""The S3 backend against moto's server over HTTP, configured through the environment as a
user would, optionally behind a proxy that injects faults and counts requests."""

import base64
import hashlib
import re
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from actor_pipeline.defs.resources import s3_client
from actor_pipeline.errors import ConfigurationError, PortraitError, StorageUnavailable
from actor_pipeline.storage.base import Storage, StoredObject
from actor_pipeline.storage.s3 import S3Storage, read_s3_uri
from actor_pipeline.storage.s3_settings import S3Settings, connection_from_env
from actor_pipeline_tests.support.s3 import (
    ACCESS_KEY,
    SECRET_KEY,
    Fault,
    FaultProxy,
    S3Env,
)

IMAGE = b"\xff\xd8\xff\xe0 not really a jpeg " * 100
METADATA = {"shot-id": "p03", "prompt-sha256": "ab" * 32, "seed": "42", "prediction-id": "xyz123"}


def storage_from_env() -> S3Storage:
    settings = S3Settings.from_env()
    assert settings is not None
    return S3Storage(settings, s3_client(settings))


def test_satisfies_storage_protocol(s3_env: S3Env) -> None:
    storage: Storage = storage_from_env()
    assert storage.name == "s3"


def test_put_get_head_list_roundtrip(s3_env: S3Env) -> None:
    storage = storage_from_env()
    stored = storage.put("actors/alice/images/p03.jpg", IMAGE, "image/jpeg", METADATA)
    storage.put("actors/alice/manifest.json", b"{}", "application/json")
    storage.put("actors/bob/manifest.json", b"{}", "application/json")

    assert stored == StoredObject(
        "actors/alice/images/p03.jpg",
        len(IMAGE),
        hashlib.sha256(IMAGE).hexdigest(),
        "image/jpeg",
        METADATA,
    )
    assert storage.head("actors/alice/images/p03.jpg") == stored
    assert storage.get("actors/alice/images/p03.jpg") == IMAGE
    assert storage.list("actors/alice/") == [
        "actors/alice/images/p03.jpg",
        "actors/alice/manifest.json",
    ]
    assert storage.list("actors/nobody/") == []

    raw = s3_env.client().head_object(Bucket=s3_env.bucket, Key="actors/alice/images/p03.jpg", ChecksumMode="ENABLED")
    assert raw["ContentType"] == "image/jpeg"
    assert raw["Metadata"] == {**METADATA, "sha256": stored.sha256}  # x-amz-meta-*
    assert raw["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(IMAGE).digest()).decode()


def test_missing_object(s3_env: S3Env) -> None:
    storage = storage_from_env()
    assert storage.head("actors/alice/nothing.jpg") is None
    with pytest.raises(FileNotFoundError, match=r"actors/alice/nothing\.jpg"):
        storage.get("actors/alice/nothing.jpg")


def test_prefix_is_applied_and_hidden(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_S3_PREFIX", "/training-data/")
    storage = storage_from_env()
    storage.put("actors/alice/manifest.json", b"{}", "application/json")

    listed = s3_env.client().list_objects_v2(Bucket=s3_env.bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["training-data/actors/alice/manifest.json"]
    assert storage.list("actors/") == ["actors/alice/manifest.json"]
    assert storage.url("actors/alice/manifest.json").endswith(
        f"/{s3_env.bucket}/training-data/actors/alice/manifest.json"
    )


def test_identical_put_sends_no_put(fault_proxy: FaultProxy, s3_env: S3Env) -> None:
    storage = storage_from_env()
    path = f"/{s3_env.bucket}/a/p01.jpg"

    def puts() -> int:
        return fault_proxy.count("PUT", path, forwarded=True)

    first = storage.put("a/p01.jpg", IMAGE, "image/jpeg", METADATA)
    assert storage.put("a/p01.jpg", IMAGE, "image/jpeg", METADATA) == first
    assert puts() == 1
    # Anything that differs is written: the bytes, the content type, the metadata.
    storage.put("a/p01.jpg", IMAGE + b"!", "image/jpeg", METADATA)
    storage.put("a/p01.jpg", IMAGE + b"!", "image/png", METADATA)
    storage.put("a/p01.jpg", IMAGE + b"!", "image/png", {**METADATA, "prediction-id": "new"})
    assert puts() == 4


def test_object_written_by_another_tool_is_replaced(fault_proxy: FaultProxy, s3_env: S3Env) -> None:
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="a/p01.jpg", Body=IMAGE)
    storage = storage_from_env()
    foreign = storage.head("a/p01.jpg")
    assert foreign is not None and foreign.sha256 == ""
    storage.put("a/p01.jpg", IMAGE, "image/jpeg")
    assert fault_proxy.count("PUT", f"/{s3_env.bucket}/a/p01.jpg", forwarded=True) == 1


def test_checksum_metadata_key_is_reserved(s3_env: S3Env) -> None:
    with pytest.raises(ValueError, match="reserved"):
        storage_from_env().put("a/p01.jpg", IMAGE, "image/jpeg", {"SHA256": "forged"})


def test_objects_are_private(s3_env: S3Env) -> None:
    storage = storage_from_env()
    storage.put("a/p01.jpg", IMAGE, "image/jpeg")

    grants = s3_env.client().get_object_acl(Bucket=s3_env.bucket, Key="a/p01.jpg")["Grants"]
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
    assert all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(storage.url("a/p01.jpg"))  # unsigned
    assert refused.value.code == 403


def test_url_on_aws_is_virtual_hosted(isolated_aws_env: None) -> None:
    def url(bucket: str, region: str, key: str, prefix: str = "") -> str:
        settings = S3Settings(bucket=bucket, region=region, prefix=prefix)
        return S3Storage(settings, s3_client(settings)).url(key)

    assert (
        url("my-bucket", "us-west-1", "actors/al ice/p+1é.jpg")
        == "https://my-bucket.s3.us-west-1.amazonaws.com/actors/al%20ice/p%2B1%C3%A9.jpg"
    )
    assert (
        url("my-bucket", "eu-central-1", "m.json", prefix="runs")
        == "https://my-bucket.s3.eu-central-1.amazonaws.com/runs/m.json"
    )
    assert url("my-bucket", "cn-north-1", "m.json") == "https://my-bucket.s3.cn-north-1.amazonaws.com.cn/m.json"
    # A dotted name would not match the wildcard TLS certificate of a virtual host.
    assert url("my.bucket", "us-west-1", "m.json") == "https://s3.us-west-1.amazonaws.com/my.bucket/m.json"


def test_url_on_custom_endpoint_is_path_style(s3_env: S3Env) -> None:
    assert storage_from_env().url("actors/a b/p+1.jpg") == f"{s3_env.endpoint}/{s3_env.bucket}/actors/a%20b/p%2B1.jpg"


def test_presigned_url_downloads_over_http(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_PRESIGN_EXPIRY", "300")
    storage = storage_from_env()
    storage.put("actors/a b/p+1.jpg", IMAGE, "image/jpeg")

    url = storage.url("actors/a b/p+1.jpg")
    assert url.startswith(f"{s3_env.endpoint}/{s3_env.bucket}/actors/a%20b/p%2B1.jpg?")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "X-Amz-Expires=300" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == IMAGE
        assert response.headers["Content-Type"] == "image/jpeg"


def test_presigned_url_on_aws_uses_sigv4(isolated_aws_env: None) -> None:
    settings = S3Settings(
        bucket="my-bucket",
        region="us-west-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        presign_expiry_s=3600,
    )
    storage = S3Storage(settings, s3_client(settings))
    url = storage.url("m.json")
    assert url.startswith("https://my-bucket.s3.")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url and "us-west-1" in url
    assert SECRET_KEY not in url


def test_transient_faults_lose_and_duplicate_nothing(fault_proxy: FaultProxy, s3_env: S3Env) -> None:
    objects = {f"actors/alice/images/p{i:02d}.jpg": IMAGE + bytes([i]) for i in range(8)}
    paths = {key: f"/{s3_env.bucket}/{key}" for key in objects}
    keys = list(objects)
    injected = [
        Fault("PUT", paths[keys[0]], times=2),  # 503 SlowDown twice
        Fault("PUT", paths[keys[1]]),
        Fault("PUT", paths[keys[2]], status=500, code="InternalError"),
        Fault("PUT", paths[keys[3]], drop_connection=True),
        Fault("HEAD", paths[keys[4]]),
        Fault("GET", paths[keys[5]]),
    ]
    for fault in injected:
        fault_proxy.fail(fault)
    storage = storage_from_env()

    with ThreadPoolExecutor(max_workers=4) as pool:  # as the pipeline stores shots
        stored = list(pool.map(lambda key: storage.put(key, objects[key], "image/jpeg", METADATA), keys))

    assert [s.sha256 for s in stored] == [hashlib.sha256(d).hexdigest() for d in objects.values()]
    assert storage.list("actors/alice/") == sorted(objects)
    assert {key: storage.get(key) for key in keys} == objects
    assert all(fault.times == 0 for fault in injected)
    assert fault_proxy.counts("PUT", forwarded=True) == {path: 1 for path in paths.values()}
    received = fault_proxy.counts("PUT", forwarded=False)
    assert [received[paths[key]] for key in keys] == [3, 2, 2, 2, 1, 1, 1, 1]

    for key in keys:  # a rerun after the faults finds everything in place
        storage.put(key, objects[key], "image/jpeg", METADATA)
    assert fault_proxy.counts("PUT", forwarded=True) == {path: 1 for path in paths.values()}


def test_persistent_slowdown_is_reported_after_the_retries(
    fault_proxy: FaultProxy, s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    fault_proxy.fail(Fault("PUT", "", times=99))
    with pytest.raises(StorageUnavailable, match="kept failing \\(SlowDown\\)"):
        storage_from_env().put("a/p01.jpg", IMAGE, "image/jpeg")
    assert fault_proxy.count("PUT", f"/{s3_env.bucket}/a/p01.jpg", forwarded=False) == 2
    assert fault_proxy.count("PUT", f"/{s3_env.bucket}/a/p01.jpg", forwarded=True) == 0


# --- s3:// portraits ---------------------------------------------------------------------


def test_read_s3_uri(s3_env: S3Env) -> None:
    storage = storage_from_env()
    storage.put("portraits/me.jpg", IMAGE, "image/jpeg")
    uri = f"s3://{s3_env.bucket}/portraits/me.jpg"

    assert read_s3_uri(uri, storage.client, max_bytes=len(IMAGE)) == IMAGE
    with pytest.raises(PortraitError, match=f"{len(IMAGE)} bytes, over the 100-byte limit"):
        read_s3_uri(uri, storage.client, max_bytes=100)


def test_read_s3_uri_without_a_configured_bucket(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="me.jpg", Body=IMAGE)
    monkeypatch.delenv("AWS_USER_FILES_BUCKET")
    assert S3Settings.from_env() is None
    client = s3_client(connection_from_env())
    assert read_s3_uri(f"s3://{s3_env.bucket}/me.jpg", client, max_bytes=10**6) == IMAGE


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket", "s3://bucket/", "https://bucket/key", "s3://bad bucket/k"])
def test_read_s3_uri_rejects_malformed_uris(s3_env: S3Env, uri: str) -> None:
    with pytest.raises(PortraitError, match=r"malformed S3 URI .*expected s3://bucket/key"):
        read_s3_uri(uri, storage_from_env().client, max_bytes=10**6)


def test_read_s3_uri_missing_or_forbidden(fault_proxy: FaultProxy, s3_env: S3Env) -> None:
    client = storage_from_env().client
    missing = f"s3://{s3_env.bucket}/portraits/missing.jpg"
    with pytest.raises(PortraitError, match=re.escape(f"portrait {missing} does not exist")):
        read_s3_uri(missing, client, max_bytes=10**6)
    with pytest.raises(PortraitError, match=re.escape("bucket of s3://no-such-bucket-x/p.jpg does not exist")):
        read_s3_uri("s3://no-such-bucket-x/p.jpg", client, max_bytes=10**6)

    fault_proxy.fail(Fault("GET", "", status=403, code="AccessDenied"))
    with pytest.raises(PortraitError, match=r"access denied to .*need s3:GetObject"):
        read_s3_uri(f"s3://{s3_env.bucket}/p.jpg", client, max_bytes=10**6)


# --- settings ----------------------------------------------------------------------------


def set_environment(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_settings_from_env_use_the_seed_variables(isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    set_environment(
        monkeypatch,
        {
            "AWS_USER_FILES_BUCKET": "my-bucket",
            "AWS_ACCESS_KEY": ACCESS_KEY,
            "AWS_ACCESS_SECRET": SECRET_KEY,
            "AWS_REGION": "us-west-1",
            "AWS_ENDPOINT_URL": "http://global:9000",
            "AWS_ENDPOINT_URL_S3": "http://minio:9000",  # wins, as in boto3
            "ACTOR_PIPELINE_S3_PREFIX": "runs/",
            "ACTOR_PIPELINE_PRESIGN_EXPIRY": "600",
            "AWS_MAX_ATTEMPTS": "3",
        },
    )
    settings = S3Settings.from_env()
    assert settings == S3Settings(
        bucket="my-bucket",
        prefix="runs/",
        region="us-west-1",
        endpoint_url="http://minio:9000",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        presign_expiry_s=600,
        max_attempts=3,
    )
    assert s3_client(settings).meta.config.retries["total_max_attempts"] == 3
    assert ACCESS_KEY not in repr(settings) and SECRET_KEY not in repr(settings)


def test_settings_without_bucket_are_none(isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    assert S3Settings.from_env() is None
    set_environment(monkeypatch, {"AWS_USER_FILES_BUCKET": " ", "AWS_REGION": "us-west-1"})
    assert S3Settings.from_env() is None


def test_defaults_leave_credentials_to_the_standard_chain(
    isolated_aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_environment(monkeypatch, {"AWS_USER_FILES_BUCKET": "my-bucket"})
    settings = S3Settings.from_env()
    assert settings == S3Settings(bucket="my-bucket")
    assert settings.access_key_id is None and settings.presign_expiry_s is None
    assert settings.max_attempts == 6


def test_standard_credential_chain_is_used_without_the_seed_keys(
    fault_proxy: FaultProxy, s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_SECRET")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "STANDARDCHAINKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "standard-chain-secret")
    storage = storage_from_env()
    assert storage.settings.access_key_id is None

    storage.put("a/p01.jpg", IMAGE, "image/jpeg")
    authorizations = [seen.headers["Authorization"] for seen in fault_proxy.seen]
    assert authorizations and all("Credential=STANDARDCHAINKEY/" in a for a in authorizations)


# --- configuration errors: one line, naming what to fix, never a secret ---------------------


def assert_clean(error: BaseException, *names: str) -> None:
    message = str(error)
    assert "\n" not in message
    assert SECRET_KEY not in message and ACCESS_KEY not in message
    for name in names:
        assert name in message


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("AWS_USER_FILES_BUCKET", "s3://my-bucket/path", "AWS_USER_FILES_BUCKET"),
        ("AWS_ENDPOINT_URL", "localhost:9000", "AWS_ENDPOINT_URL"),
        ("AWS_ENDPOINT_URL_S3", "minio:9000", "AWS_ENDPOINT_URL_S3"),
        ("AWS_REGION", "us west 1", "AWS_REGION"),
        ("AWS_ACCESS_SECRET", "", "AWS_ACCESS_SECRET"),  # half a key pair
        ("ACTOR_PIPELINE_PRESIGN_EXPIRY", "soon", "ACTOR_PIPELINE_PRESIGN_EXPIRY"),
        ("ACTOR_PIPELINE_PRESIGN_EXPIRY", "0", "ACTOR_PIPELINE_PRESIGN_EXPIRY"),
        ("ACTOR_PIPELINE_PRESIGN_EXPIRY", "604801", "ACTOR_PIPELINE_PRESIGN_EXPIRY"),
        ("AWS_MAX_ATTEMPTS", "0", "AWS_MAX_ATTEMPTS"),
    ],
)
def test_invalid_settings(
    s3_env: S3Env, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        S3Settings.from_env()
    assert_clean(raised.value, named)


def test_missing_bucket(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_USER_FILES_BUCKET", "no-such-bucket-x")
    storage = storage_from_env()
    with pytest.raises(ConfigurationError) as raised:
        storage.check()
    assert_clean(raised.value, "s3://no-such-bucket-x/", "does not exist", "AWS_USER_FILES_BUCKET")
    with pytest.raises(ConfigurationError, match="AWS_USER_FILES_BUCKET"):
        storage.put("a/p01.jpg", IMAGE, "image/jpeg")


@pytest.mark.parametrize("code", ["InvalidAccessKeyId", "SignatureDoesNotMatch"])
def test_refused_credentials(fault_proxy: FaultProxy, s3_env: S3Env, code: str) -> None:
    fault_proxy.fail(Fault("GET", "", status=403, code=code))
    with pytest.raises(ConfigurationError) as raised:
        storage_from_env().check()
    assert_clean(raised.value, code, "AWS_ACCESS_KEY", "AWS_ACCESS_SECRET")


def test_no_credentials_anywhere(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY")
    monkeypatch.delenv("AWS_ACCESS_SECRET")
    with pytest.raises(ConfigurationError) as raised:
        storage_from_env().put("a/p01.jpg", IMAGE, "image/jpeg")
    assert_clean(raised.value, "AWS_ACCESS_KEY", "AWS_ACCESS_SECRET", "AWS_PROFILE")


def test_unreachable_endpoint(s3_env: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    with pytest.raises(StorageUnavailable) as raised:  # an outage or a typo: exit 1, a rerun resumes
        storage_from_env().check()
    assert_clean(raised.value, f"http://127.0.0.1:{port}", "AWS_ENDPOINT_URL")


def test_denied_access_names_the_permission(fault_proxy: FaultProxy, s3_env: S3Env) -> None:
    fault_proxy.fail(Fault("PUT", "", status=403, code="AccessDenied"))
    with pytest.raises(ConfigurationError) as raised:
        storage_from_env().put("a/p01.jpg", IMAGE, "image/jpeg")
    assert_clean(raised.value, "access denied", "s3:PutObject")
