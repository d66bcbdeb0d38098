"""S3 fixtures over real HTTP (moto's server, a fault-injecting proxy), shared with other test
folders through ``actor_pipeline_tests.s3_fixtures``."""

from actor_pipeline_tests.s3_fixtures import (  # noqa: F401
    fault_proxy,
    isolated_aws_env,
    moto_endpoint,
    s3_env,
)
