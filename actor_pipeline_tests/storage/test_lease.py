"""The actor lease: one maker per actor, locally (a locked file) and in S3 (conditional writes
over HTTP against moto), with re-entrancy, a clear busy message and the takeover of a dead one."""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from actor_pipeline.defs.resources import s3_client
from actor_pipeline.errors import ActorBusy
from actor_pipeline.storage.base import Storage
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.lease import LeaseInfo, current_holder, hold_actor, lease_key
from actor_pipeline.storage.s3 import S3Storage
from actor_pipeline.storage.s3_settings import S3Settings
from actor_pipeline_tests.support.s3 import S3Env


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield FolderStorage(tmp_path / "store")
        return
    request.getfixturevalue("s3_env")
    settings = S3Settings.from_env()
    assert settings is not None
    yield S3Storage(settings, s3_client(settings), tmp_path / "state")


def test_one_maker_per_actor_and_reentrant_within_a_process(store: Storage) -> None:
    with hold_actor(store, "alice", "first maker") as held:
        with hold_actor(store, "alice", "the image stage of the same command") as inner:
            assert inner is held
        holder = current_holder(store, "alice")
        assert holder and holder.command == "first maker" and holder.pid == os.getpid()
        with hold_actor(store, "bob", "another actor"):  # other actors are independent
            pass
    assert current_holder(store, "alice") is None
    with hold_actor(store, "alice", "the next maker"):
        pass


def test_a_second_process_gets_one_line_naming_the_holder(store: Storage, tmp_path: Path) -> None:
    script = (
        "from actor_pipeline.errors import ActorBusy\n"
        "from actor_pipeline.storage.lease import hold_actor\n"
        "try:\n"
        "    with hold_actor(STORE, 'alice', 'second'): print('acquired')\n"
        "except ActorBusy as exc: print(exc)\n"
    )
    if isinstance(store, FolderStorage):
        setup = f"from actor_pipeline.storage.folder import FolderStorage\nSTORE = FolderStorage({str(store.root)!r})\n"
    else:
        setup = (
            "from actor_pipeline.defs.resources import s3_client\nfrom actor_pipeline.storage.s3 import S3Storage\n"
            "from actor_pipeline.storage.s3_settings import S3Settings\nSETTINGS = S3Settings.from_env()\n"
            f"STORE = S3Storage(SETTINGS, s3_client(SETTINGS), {str(tmp_path / 'state2')!r})\n"
        )
    with hold_actor(store, "alice", "actor-pipeline generate"):
        done = subprocess.run([sys.executable, "-c", setup + script], capture_output=True, text=True, timeout=60)
    out = done.stdout
    assert not done.stderr, done.stderr
    assert out.startswith("actor 'alice' is being made by actor-pipeline generate (pid ") and " since " in out
    assert len(out.strip().splitlines()) == 1


def test_a_lease_whose_holder_died_is_taken_over(store: Storage) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    now = datetime.now(UTC)
    stale = LeaseInfo(host=socket.gethostname(), pid=int(dead.stdout), command="killed", since=now, expires_at=now + timedelta(hours=1))
    store.put(lease_key("alice"), stale.model_dump_json().encode(), "application/json")
    assert current_holder(store, "alice") is None  # its process is gone
    with hold_actor(store, "alice", "survivor"):
        assert current_holder(store, "alice").command == "survivor"  # type: ignore[union-attr]


def test_an_expired_s3_lease_of_another_machine_is_taken_over(s3_env: S3Env, tmp_path: Path) -> None:
    settings = S3Settings.from_env()
    assert settings is not None
    store = S3Storage(settings, s3_client(settings), tmp_path)
    now = datetime.now(UTC)
    expired = LeaseInfo(host="elsewhere", pid=1, command="gone", since=now - timedelta(hours=1), expires_at=now - timedelta(seconds=1))
    alive = expired.model_copy(update={"expires_at": now + timedelta(minutes=1)})
    store.put(lease_key("alice"), alive.model_dump_json().encode(), "application/json")
    with pytest.raises(ActorBusy, match="pid 1 on elsewhere"):
        with hold_actor(store, "alice", "me"):
            pass
    store.put(lease_key("alice"), expired.model_dump_json().encode(), "application/json")
    with hold_actor(store, "alice", "me"):
        body = json.loads(s3_env.client().get_object(Bucket=s3_env.bucket, Key=lease_key("alice"))["Body"].read())
        assert body["command"] == "me"
    assert s3_env.client().list_objects_v2(Bucket=s3_env.bucket, Prefix="_leases/").get("KeyCount") == 0  # released


def test_a_second_maker_may_wait_for_the_first_to_finish(tmp_path: Path) -> None:
    store = FolderStorage(tmp_path / "store")
    script = (
        "import time\nfrom actor_pipeline.storage.lease import hold_actor\n"
        "from actor_pipeline.storage.folder import FolderStorage\n"
        f"with hold_actor(FolderStorage({str(store.root)!r}), 'alice', 'first'):\n    print('held', flush=True); time.sleep(1.5)\n"
    )
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout and first.stdout.readline().strip() == "held"
        with pytest.raises(ActorBusy):
            with hold_actor(store, "alice", "impatient"):
                pass
        with hold_actor(store, "alice", "patient", wait_s=30):  # a Dagster run waits its turn
            assert current_holder(store, "alice").command == "patient"  # type: ignore[union-attr]
        assert first.wait(timeout=10) == 0
    finally:
        first.kill()
        first.wait()
