"""The S3 inbox is tested against moto's server (``actor_pipeline_tests.s3_fixtures``)."""

from actor_pipeline_tests.s3_fixtures import isolated_aws_env, moto_endpoint, s3_env  # noqa: F401
