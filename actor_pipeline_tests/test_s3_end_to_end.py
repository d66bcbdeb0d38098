"""The whole pipeline against S3 over HTTP (moto's server), configured with the seed's variables."""

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from actor_pipeline import ActorTrainingDataGenerator
from actor_pipeline.cli import main
from actor_pipeline.defs.resources import ImageGeneratorResource
from actor_pipeline_tests.support.backends import FlakyBackend
from actor_pipeline_tests.support.s3 import Fault, FaultProxy, S3Env

PREFIX = "u1/custom-actors/alice/training_data/"


def generate(capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait: str, *extra: str) -> tuple[int, dict]:
    code = main(["generate", portrait, "--actor-id", "alice", "--user-id", "u1", "--out", str(tmp_path / "local"), *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out else {}


def keys(env: S3Env) -> set[str]:
    listed = env.client().list_objects_v2(Bucket=env.bucket).get("Contents", [])
    return {item["Key"] for item in listed}


def test_generate_puts_the_set_in_s3_and_the_manifest_urls_resolve(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_PRESIGN_EXPIRY", "600")
    code, result = generate(capsys, tmp_path, str(portrait_file))
    assert code == 0 and result["total_training_images"] == 17

    stored = keys(s3_env)
    expected = {f"{PREFIX}actor_alice_td_{n:02d}.jpg" for n in range(1, 18)}
    expected |= {f"{PREFIX}manifest.json", f"{PREFIX}training_data_grid.jpg", f"{PREFIX}normalized_portrait.jpg"}
    assert expected <= stored
    assert not (tmp_path / "local" / "u1").exists()  # nothing went to the local folder

    manifest = json.loads(s3_env.client().get_object(Bucket=s3_env.bucket, Key=f"{PREFIX}manifest.json")["Body"].read())
    with httpx.Client(timeout=10) as http:
        for image in manifest["images"]:
            body = http.get(image["url"]).raise_for_status().content
            assert hashlib.sha256(body).hexdigest() == image["sha256"]
        assert http.get(manifest["grid"]["url"]).raise_for_status().content[:2] == b"\xff\xd8"
        assert http.get(result["manifest_url"]).raise_for_status().json()["actor_id"] == "alice"
    head = s3_env.client().head_object(Bucket=s3_env.bucket, Key=f"{PREFIX}actor_alice_td_08.jpg")
    assert head["ContentType"] == "image/jpeg" and head["Metadata"]["shot-id"] == "pen_ink"


def test_manifest_is_written_last_and_transient_slowdowns_lose_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, s3_env: S3Env, fault_proxy: FaultProxy
) -> None:
    for n in (1, 5, 9, 17):
        fault_proxy.fail(Fault("PUT", f"/{s3_env.bucket}/{PREFIX}actor_alice_td_{n:02d}.jpg", times=2))
    fault_proxy.fail(Fault("PUT", f"/{s3_env.bucket}/{PREFIX}manifest.json", times=1))
    code, result = generate(capsys, tmp_path, str(portrait_file))
    assert code == 0 and result["total_training_images"] == 17

    puts = [s.path for s in fault_proxy.seen if s.method == "PUT" and s.forwarded and s.path.startswith(f"/{s3_env.bucket}/{PREFIX}")]
    assert puts[-1].endswith("/manifest.json")  # every image and the grid were stored before it
    forwarded = fault_proxy.counts("PUT", forwarded=True)
    for n in range(1, 18):
        assert forwarded[f"/{s3_env.bucket}/{PREFIX}actor_alice_td_{n:02d}.jpg"] == 1  # nothing duplicated
    assert fault_proxy.count("PUT", f"/{s3_env.bucket}/{PREFIX}actor_alice_td_05.jpg", forwarded=False) == 3


def test_a_rerun_updates_the_manifest_without_dropping_earlier_images(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, portrait_file: Path, s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert generate(capsys, tmp_path, str(portrait_file))[0] == 0
    backend = FlakyBackend(fail={"charcoal"})
    monkeypatch.setattr(ImageGeneratorResource, "create_backend", lambda self, catalog: backend)
    code, result = generate(capsys, tmp_path, str(portrait_file), "--force")
    assert code == 1 and [f["shot_id"] for f in result["failed"]] == ["charcoal"]
    assert f"{PREFIX}actor_alice_td_10.jpg" in keys(s3_env)
    manifest = json.loads(s3_env.client().get_object(Bucket=s3_env.bucket, Key=f"{PREFIX}manifest.json")["Body"].read())
    charcoal = manifest["images"][9]
    assert charcoal["status"] == "failed" and charcoal["key"] == f"{PREFIX}actor_alice_td_10.jpg"
    assert manifest["totals"]["generated"] == 16


def test_s3_portrait_source_and_the_seed_api(
    tmp_path: Path, portrait_bytes: bytes, s3_env: S3Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env.client().put_object(Bucket=s3_env.bucket, Key="inbox/face.jpg", Body=portrait_bytes)
    generator = ActorTrainingDataGenerator(output_dir=str(tmp_path), batch_size=4)
    result = generator.generate_training_data(f"s3://{s3_env.bucket}/inbox/face.jpg", "user_123", "actor_456")
    assert result["total_training_images"] == 17
    assert "user_123/custom-actors/actor_456/training_data/manifest.json" in keys(s3_env)
    manifest = json.loads(
        s3_env.client().get_object(Bucket=s3_env.bucket, Key="user_123/custom-actors/actor_456/training_data/manifest.json")["Body"].read()
    )
    assert manifest["portrait"]["source"] == f"s3://{s3_env.bucket}/inbox/face.jpg"
