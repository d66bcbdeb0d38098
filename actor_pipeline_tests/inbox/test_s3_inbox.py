"""The inbox on an S3 prefix, against moto's server over real HTTP."""

import boto3

from actor_pipeline.inbox import InboxCursor, open_inbox, take_in
from actor_pipeline.registry import load_registration
from actor_pipeline.storage.local import LocalStorage
from actor_pipeline_tests.s3_fixtures import ACCESS_KEY, REGION, SECRET_KEY, S3Env


def test_an_s3_prefix_is_scanned_like_a_folder(s3_env: S3Env, storage: LocalStorage, portrait_bytes: bytes) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_env.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )

    def put(key: str, data: bytes) -> None:
        client.put_object(Bucket=s3_env.bucket, Key=key, Body=data)

    # Uploads within one second share a LastModified: the cursor must still take every one.
    put("drop/u1/alice.jpg", portrait_bytes)
    put("drop/u1/alice.json", b'{"actor_sex": "female"}')
    put("drop/u1/bob.png", portrait_bytes)
    put("drop/u1/broken.jpg", b"not an image")
    put("elsewhere/u1/carol.jpg", portrait_bytes)  # outside the prefix

    inbox = open_inbox(f"s3://{s3_env.bucket}/drop")
    assert inbox.location == f"s3://{s3_env.bucket}/drop/"
    first = take_in(inbox, storage, InboxCursor(), now=2e9, settle_s=10, limit=20)
    assert sorted(r.registration.actor_id for r in first.registered) == ["alice", "bob"]
    assert [p.split(": ")[0] for p in first.problems] == [f"s3://{s3_env.bucket}/drop/u1/broken.jpg"]
    alice = load_registration(storage, "alice")
    assert alice.portrait_source == f"s3://{s3_env.bucket}/drop/u1/alice.jpg" and alice.descriptor == "woman"

    second = take_in(inbox, storage, first.cursor, now=2e9, settle_s=10, limit=20)
    assert second.registered == [] and second.problems == []

    put("drop/u1/bob.png", portrait_bytes + b"\0")  # replaced: a new ETag
    third = take_in(inbox, storage, second.cursor, now=2e9, settle_s=10, limit=20)
    assert [r.registration.actor_id for r in third.registered] == ["bob"]
