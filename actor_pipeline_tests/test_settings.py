"""The environment, read in one place: names, precedence, blanks and the errors a bad value gives."""

import pytest

from actor_pipeline.errors import ConfigurationError
from actor_pipeline.settings import EnvSettings, variable


def test_each_setting_has_the_variable_users_already_know() -> None:
    assert variable("output_dir") == "ACTOR_PIPELINE_OUTPUT_DIR"
    assert variable("replicate_api_token") == "REPLICATE_API_TOKEN"
    assert [variable(f) for f in ("bucket", "access_key", "access_secret", "region")] == [
        "AWS_USER_FILES_BUCKET", "AWS_ACCESS_KEY", "AWS_ACCESS_SECRET", "AWS_REGION"]


def test_values_are_typed_and_blank_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTOR_PIPELINE_MAX_CONCURRENCY", " 8 ")
    monkeypatch.setenv("ACTOR_PIPELINE_QC_IDENTITY", "off")
    monkeypatch.setenv("AWS_USER_FILES_BUCKET", "  ")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://global:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000")
    env = EnvSettings.load()
    assert (env.max_concurrency, env.qc_identity, env.bucket) == (8, False, None)
    assert env.endpoint_url == "http://minio:9000"  # the S3-specific one wins, as in boto3


def test_secrets_stay_out_of_the_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_secret")
    monkeypatch.setenv("AWS_ACCESS_SECRET", "aws-secret")
    text = repr(EnvSettings.load())
    assert "r8_secret" not in text and "aws-secret" not in text


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ACTOR_PIPELINE_MAX_CONCURRENCY", "lots", "ACTOR_PIPELINE_MAX_CONCURRENCY is 'lots': use a whole number of shots"),
        ("ACTOR_PIPELINE_SHOT_TIMEOUT_S", "0", "ACTOR_PIPELINE_SHOT_TIMEOUT_S is '0': use a number of seconds greater than 0"),
        ("ACTOR_PIPELINE_QC_IDENTITY", "maybe", "ACTOR_PIPELINE_QC_IDENTITY is 'maybe': use 1 or 0"),
        ("AWS_MAX_ATTEMPTS", "x", "AWS_MAX_ATTEMPTS is 'x': use a whole number"),
    ],
)
def test_a_bad_value_names_its_variable_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message):
        EnvSettings.load()
