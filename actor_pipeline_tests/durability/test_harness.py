"""The harness's own moving parts that the rows rely on, checked in a second: a row that fails
must fail because of the product, not because S3 never went down or never came back."""

from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from actor_pipeline_tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY

if TYPE_CHECKING:
    from actor_pipeline_tests.support.s3 import FaultProxy, S3Env


def test_the_s3_proxy_goes_down_and_comes_back(s3_env: "S3Env", fault_proxy: "FaultProxy") -> None:
    client = boto3.client(
        "s3", endpoint_url=fault_proxy.url, region_name=REGION, aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip
    client.put_object(Bucket=s3_env.bucket, Key="before", Body=b"1")  # leaves a kept-alive connection
    with fault_proxy.outage(), pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        client.put_object(Bucket=s3_env.bucket, Key="during", Body=b"2")
    client.put_object(Bucket=s3_env.bucket, Key="after", Body=b"3")
    listed = {item["Key"] for item in s3_env.client().list_objects_v2(Bucket=s3_env.bucket)["Contents"]}
    assert listed == {"before", "after"}
    assert fault_proxy.count("PUT", f"/{s3_env.bucket}/during", forwarded=False) == 1
