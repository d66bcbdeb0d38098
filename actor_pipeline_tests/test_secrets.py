"""Known secret values never appear in any output: files, logs, S3 objects, Dagster's event log."""

import logging
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from actor_pipeline.cli import main
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator
from actor_pipeline_tests.support.s3 import SECRET_KEY, S3Env


def test_secrets_stay_out_of_every_output(
    tmp_path: Path,
    portrait_bytes: bytes,
    s3_env: S3Env,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    portrait = tmp_path / "portrait.jpg"
    portrait.write_bytes(portrait_bytes)
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.02, flagged=("kicking open a warehouse door",))) as emulator:
        for name, value in emulator.env().items():
            monkeypatch.setenv(name, value)
        code = main(["generate", str(portrait), "--actor-id", "alice", "--out", str(tmp_path / "out"),
                     "--debug-dir", str(tmp_path / "debug")])
        secrets = {"replicate token": emulator.token, "AWS secret": SECRET_KEY}
    assert code == 1  # one shot flagged: error messages are part of what is searched
    captured = capsys.readouterr()

    outputs: dict[str, bytes] = {"stdout": captured.out.encode(), "stderr": captured.err.encode(),
                                 "logs": caplog.text.encode()}
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "portrait.jpg"]
    assert any(p.name == "request_payload_1.json" for p in files) and any(p.suffix == ".db" for p in files)
    outputs.update({str(p): p.read_bytes() for p in files})
    client = s3_env.client()
    for item in client.list_objects_v2(Bucket=s3_env.bucket)["Contents"]:
        head = client.head_object(Bucket=s3_env.bucket, Key=item["Key"])
        body = client.get_object(Bucket=s3_env.bucket, Key=item["Key"])["Body"].read()
        outputs[f"s3://{item['Key']}"] = body + repr(head["Metadata"]).encode()
    with dg.DagsterInstance.get() as instance:
        for run in instance.get_runs():
            outputs[f"event log {run.run_id}"] = "".join(repr(e) for e in instance.all_logs(run.run_id)).encode()
            outputs[f"run {run.run_id}"] = repr(run).encode()
    assert len([k for k in outputs if k.startswith("event log")]) == 1  # generate makes the set in one run
    help_text = subprocess.run([sys.executable, "-m", "actor_pipeline.cli", "generate", "--help"],
                               capture_output=True, check=True).stdout
    outputs["--help"] = help_text

    for what, secret in secrets.items():
        leaks = [name for name, content in outputs.items() if secret.encode() in content]
        assert not leaks, f"the {what} leaked into {leaks}"
