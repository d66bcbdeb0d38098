"""The inbox on an S3 prefix, against moto's server over real HTTP."""

import boto3

from actor_pipeline.defs.resources import s3_client
from actor_pipeline.inbox import InboxCursor, open_inbox, take_in
from actor_pipeline.storage.s3_settings import connection_from_env
from actor_pipeline_tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Env


def test_an_s3_prefix_is_scanned_like_a_folder(s3_env: S3Env, portrait_bytes: bytes) -> None:
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
    put("drop/u1/Bad Name.jpg", portrait_bytes)
    put("elsewhere/u1/carol.jpg", portrait_bytes)  # outside the prefix

    inbox = open_inbox(f"s3://{s3_env.bucket}/drop", lambda: s3_client(connection_from_env()))
    assert inbox.location == f"s3://{s3_env.bucket}/drop/"
    first = take_in(inbox, InboxCursor(), now=2e9, settle_s=10, limit=20)
    assert sorted(a.new.actor_id for a in first.arrived) == ["alice", "bob"]
    assert [p.split(": ")[0] for p in first.problems] == [f"s3://{s3_env.bucket}/drop/u1/Bad Name.jpg"]
    alice = next(a.new for a in first.arrived if a.new.actor_id == "alice")
    assert alice.portrait == f"s3://{s3_env.bucket}/drop/u1/alice.jpg" and alice.actor_sex == "female"

    second = take_in(inbox, first.cursor, now=2e9, settle_s=10, limit=20)
    assert second.arrived == [] and second.problems == []

    put("drop/u1/bob.png", portrait_bytes + b"\0")  # replaced: a new ETag
    third = take_in(inbox, second.cursor, now=2e9, settle_s=10, limit=20)
    assert [a.new.actor_id for a in third.arrived] == ["bob"]
