"""The emulator itself: faithful to replicate-api.md §6 as seen by the real client 1.0.7."""

import base64
import io
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import replicate
from PIL import Image
from replicate.exceptions import ModelError, ReplicateError
from replicate.helpers import FileOutput

from actor_pipeline.generation.replicate.problems import is_content_flagged
from actor_pipeline_tests.replicate_emulator import FLAGGED_ERROR, Behaviour, Fault, ReplicateEmulator
from actor_pipeline_tests.replicate_emulator.account import VERSION_ID

MODEL = "black-forest-labs/flux-kontext-pro"


def jpeg(size: tuple[int, int] = (64, 80)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def data_uri(size: tuple[int, int] = (64, 80)) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg(size)).decode()


def api(emulator: ReplicateEmulator, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=emulator.base_url, headers={"Authorization": f"Bearer {token or emulator.token}"})


def test_a_create_honours_prefer_wait_and_answers_like_replicate(emulator: ReplicateEmulator) -> None:
    with api(emulator) as http:
        response = http.post(
            f"/v1/models/{MODEL}/predictions", json={"input": {"prompt": "x", "seed": 3}}, headers={"Prefer": "wait=5"}
        )
    body = response.json()
    assert response.status_code == 201 and response.headers["Preference-Applied"] == "wait"
    assert int(response.headers["ratelimit-remaining"]) == 599 and "ratelimit-reset" in response.headers
    assert body["status"] == "succeeded" and body["model"] == MODEL and body["version"] == "hidden"
    assert body["output"].startswith("https://127.0.0.1:") and body["metrics"]["image_count"] == 1
    assert {"id", "input", "logs", "error", "created_at", "started_at", "completed_at", "urls"} <= body.keys()


def test_without_prefer_wait_a_create_answers_starting(emulator: ReplicateEmulator) -> None:
    prediction = replicate.Client().models.predictions.create(model=MODEL, input={"prompt": "x"})
    assert prediction.status == "starting" and prediction.output is None


def test_errors_are_problem_json(emulator: ReplicateEmulator) -> None:
    with api(emulator, token="r8_wrong") as http:
        unauthenticated = http.get("/v1/predictions")
    with api(emulator) as http:
        missing = http.get("/v1/predictions/doesnotexist")
        invalid = http.post(f"/v1/models/{MODEL}/predictions", json={"input": {"prompt": "x", "output_format": "webp"}})
        no_model = http.post("/v1/models/someone/else/predictions", json={"input": {"prompt": "x"}})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["title"] == "Unauthenticated"
    assert unauthenticated.headers["Content-Type"] == "application/problem+json"
    assert missing.status_code == no_model.status_code == 404
    assert invalid.status_code == 422 and invalid.json()["invalid_fields"][0]["field"] == "input.output_format"


@pytest.mark.parametrize(
    ("input_", "field"),
    [
        ({}, "input"),
        ({"prompt": "x", "aspect_ratio": "16:10"}, "input.aspect_ratio"),
        ({"prompt": "x", "safety_tolerance": 7}, "input.safety_tolerance"),
        ({"prompt": "x", "safety_tolerance": 3, "input_image": data_uri()}, "input.safety_tolerance"),
        ({"prompt": "x", "seed": "7"}, "input.seed"),
        ({"prompt": "x", "input_image": "data:image/jpeg;base64,bm90IGFuIGltYWdl"}, "input.input_image"),
        ({"prompt": "x", "cfg": 3}, "input.cfg"),
    ],
)
def test_the_models_schema_is_enforced(emulator: ReplicateEmulator, input_: dict[str, object], field: str) -> None:
    with pytest.raises(ReplicateError) as raised:
        replicate.Client().models.predictions.create(model=MODEL, input=input_)
    assert raised.value.status == 422 and field in (raised.value.detail or "")


def test_a_version_create_needs_a_known_version(emulator: ReplicateEmulator) -> None:
    client = replicate.Client()
    assert client.predictions.create(version=VERSION_ID, input={"prompt": "x"}).model == MODEL
    with pytest.raises(ReplicateError, match="Invalid version"):
        client.predictions.create(version="0" * 64, input={"prompt": "x"})


def test_outputs_are_served_over_tls_trusted_through_ssl_cert_file(emulator: ReplicateEmulator) -> None:
    output = replicate.Client().run(MODEL, input={"prompt": "x", "output_format": "jpg", "aspect_ratio": "1:1"})
    assert isinstance(output, FileOutput)
    with Image.open(io.BytesIO(output.read())) as image:
        assert (image.format, image.size) == ("JPEG", (1024, 1024))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(output.url, verify=True, trust_env=False)  # untrusted without the test CA


def test_match_input_image_follows_the_portrait(emulator: ReplicateEmulator) -> None:
    output = replicate.Client().run(MODEL, input={"prompt": "x", "input_image": data_uri((600, 800))})
    assert isinstance(output, FileOutput)
    with Image.open(io.BytesIO(output.read())) as image:
        assert image.size[0] < image.size[1]


def test_files_upload_get_list_delete(emulator: ReplicateEmulator) -> None:
    client = replicate.Client()
    uploaded = client.files.create(io.BytesIO(b"\xff\xd8 jpeg-ish"), filename="a.jpg", metadata={"k": "v"})
    assert uploaded.content_type == "image/jpeg" and uploaded.size == 11 and uploaded.metadata == {"k": "v"}
    assert client.files.get(uploaded.id).urls == uploaded.urls
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert client.files.delete(uploaded.id)
    with pytest.raises(ReplicateError) as raised:
        client.files.get(uploaded.id)
    assert raised.value.status == 404


def test_a_deleted_file_is_no_input_image(emulator: ReplicateEmulator) -> None:
    client = replicate.Client()
    url = client.files.create(io.BytesIO(jpeg()), filename="p.jpg").urls["get"]
    assert client.models.predictions.create(model=MODEL, input={"prompt": "x", "input_image": url})
    client.files.delete(url.rsplit("/", 1)[1])
    with pytest.raises(ReplicateError, match="Input validation failed"):
        client.models.predictions.create(model=MODEL, input={"prompt": "x", "input_image": url})


def test_ids_are_shaped_as_replicate_makes_them(emulator: ReplicateEmulator) -> None:
    client = replicate.Client()
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "x"})
    uploaded = client.files.create(io.BytesIO(jpeg()), filename="p.jpg")

    assert re.fullmatch(r"[0-9a-z]{26}", prediction.id)  # lowercase base32
    # A UUID's text in base64, as in replicate-python's recorded uploads: always with capitals.
    assert re.fullmatch(r"[A-Za-z0-9]{48}", uploaded.id) and uploaded.id != uploaded.id.lower()
    assert uuid.UUID(base64.b64decode(uploaded.id).decode())
    assert client.files.get(uploaded.id).id == uploaded.id
    with pytest.raises(ReplicateError) as raised:
        client.files.get(uploaded.id.lower())  # ids are case-sensitive
    assert raised.value.status == 404
    assert client.models.predictions.create(model=MODEL, input={"prompt": "x", "input_image": uploaded.urls["get"]})


def test_an_upload_expires_a_day_later_and_is_no_input_image_then(emulator: ReplicateEmulator) -> None:
    client = replicate.Client()
    output = client.run(MODEL, input={"prompt": "x"})
    assert isinstance(output, FileOutput)
    uploaded = client.files.create(io.BytesIO(jpeg()), filename="p.jpg")
    url = uploaded.urls["get"]
    assert uploaded.expires_at is not None
    lifetime = datetime.fromisoformat(uploaded.expires_at) - datetime.fromisoformat(uploaded.created_at)
    assert lifetime == timedelta(days=1)

    emulator.account.advance(86_400 - 1)
    assert client.files.get(uploaded.id).id == uploaded.id
    assert client.models.predictions.create(model=MODEL, input={"prompt": "x", "input_image": url})

    emulator.account.advance(1)
    for gone in (lambda: client.files.get(uploaded.id), lambda: client.files.delete(uploaded.id)):
        with pytest.raises(ReplicateError) as raised:
            gone()
        assert raised.value.status == 404
    assert list(client.files.list()) == []
    with pytest.raises(ReplicateError) as refused:
        client.models.predictions.create(model=MODEL, input={"prompt": "x", "input_image": url})
    assert refused.value.status == 422 and "input.input_image" in (refused.value.detail or "")
    with pytest.raises(httpx.HTTPStatusError, match="404"):
        output.read()  # a day later the output is long gone too
    # A rerun uploads the portrait again and goes on.
    again = client.files.create(io.BytesIO(jpeg()), filename="p.jpg").urls["get"]
    assert client.models.predictions.create(model=MODEL, input={"prompt": "x", "input_image": again})


def test_file_ttl_s_shortens_the_life_of_uploads() -> None:
    with ReplicateEmulator(behaviour=Behaviour(file_ttl_s=0.2)) as emulator:
        client = replicate.Client(api_token=emulator.token, base_url=emulator.base_url)
        uploaded = client.files.create(io.BytesIO(jpeg()), filename="p.jpg")
        assert uploaded.expires_at is not None
        lifetime = datetime.fromisoformat(uploaded.expires_at) - datetime.fromisoformat(uploaded.created_at)
        assert lifetime == timedelta(seconds=0.2)
        time.sleep(0.25)
        with pytest.raises(ReplicateError) as raised:
            client.files.get(uploaded.id)
        assert raised.value.status == 404


def test_an_early_output_is_set_while_the_prediction_is_still_processing(emulator: ReplicateEmulator) -> None:
    emulator.behaviour.early_output = True
    emulator.behaviour.early_output_s = 60.0  # only advance() ends it
    client = replicate.Client()

    # A held create answers as soon as the image is made.
    early = client.models.predictions.create(model=MODEL, input={"prompt": "x"}, wait=30)
    assert early.status == "processing" and isinstance(early.output, str) and early.completed_at is None
    with Image.open(io.BytesIO(FileOutput(early.output, client).read())) as image:
        assert image.format == "PNG"
    # Polling sees the same once the image is made, and run() takes it as the result.
    polled = client.models.predictions.create(model=MODEL, input={"prompt": "y"})
    emulator.account.advance(1)
    assert client.predictions.get(polled.id).status == "processing"
    assert client.predictions.get(polled.id).output
    assert isinstance(client.run(MODEL, input={"prompt": "z"}), FileOutput)
    counters = emulator.account.counters()
    assert (counters.succeeded, counters.paid, counters.unfinished_wait_answers) == (0, 3, 2)

    emulator.account.advance(60)
    done = client.predictions.get(early.id)
    assert done.status == "succeeded" and done.output == early.output and done.completed_at
    counters = emulator.account.counters()
    assert counters.succeeded == counters.paid == 3


def test_a_prediction_canceled_after_its_early_output_is_still_paid(emulator: ReplicateEmulator) -> None:
    emulator.behaviour.early_output = True
    client = replicate.Client()
    early = client.models.predictions.create(model=MODEL, input={"prompt": "x"}, wait=30)

    canceled = client.predictions.cancel(early.id)
    assert canceled.status == "canceled" and canceled.output == early.output
    counters = emulator.account.counters()
    assert (counters.succeeded, counters.canceled, counters.paid) == (0, 1, 1)


@pytest.mark.parametrize(
    "wording",
    [
        FLAGGED_ERROR,
        "The input or output was flagged as potentially sensitive. Please try again with different inputs. (E005)",
        "Content Moderated",
        "Request Moderated",
    ],
)
def test_a_flagged_prediction_fails_with_the_chosen_wording(emulator: ReplicateEmulator, wording: str) -> None:
    emulator.behaviour.flagged_error = wording
    with pytest.raises(ModelError) as raised:
        replicate.Client().run(MODEL, input={"prompt": "[flag] x"})
    assert str(raised.value) == wording and is_content_flagged(str(raised.value))


def test_the_list_is_newest_first_paged_and_filtered(emulator: ReplicateEmulator) -> None:
    emulator.behaviour.page_size = 2
    client = replicate.Client()
    made = [client.models.predictions.create(model=MODEL, input={"prompt": f"p{i}"}).id for i in range(5)]

    first = client.predictions.list()
    second = client.predictions.list(first.next)
    third = client.predictions.list(second.next)
    assert [p.id for page in (first, second, third) for p in page] == made[::-1]
    assert third.next is None and second.previous
    after = client.predictions.list(f"/v1/predictions?created_after={first.results[1].created_at}")
    assert [p.id for p in after] == made[:2:-1]


def test_an_hour_after_it_ends_a_prediction_is_listed_without_its_input_output_and_logs(
    emulator: ReplicateEmulator,
) -> None:
    client = replicate.Client()
    made = client.models.predictions.create(model=MODEL, input={"prompt": "x", "seed": 3}, wait=5)
    emulator.account.age(3599)
    with api(emulator) as http:
        kept = http.get(f"/v1/predictions/{made.id}").json()
        emulator.account.age(2)
        removed = http.get(f"/v1/predictions/{made.id}").json()
    assert kept["input"] == {"prompt": "x", "seed": 3} and kept["output"] and not kept["data_removed"]
    assert (removed["input"], removed["output"], removed["logs"], removed["data_removed"]) == ({}, None, "", True)
    assert removed["status"] == "succeeded" and removed["metrics"]["predict_time"] > 0  # still billed, and shown so
    assert [p.input for p in client.predictions.list()] == [{}]


def test_cancel_ends_a_prediction_as_canceled(emulator: ReplicateEmulator) -> None:
    client = replicate.Client()
    prediction = client.models.predictions.create(model=MODEL, input={"prompt": "[hang]"})
    assert client.predictions.cancel(prediction.id).status == "canceled"
    assert client.predictions.get(prediction.id).status == "canceled"


def test_gateway_errors_are_not_json(emulator: ReplicateEmulator) -> None:
    emulator.account.inject("create", Fault(502))
    with pytest.raises(ReplicateError) as raised:
        replicate.Client().models.predictions.create(model=MODEL, input={"prompt": "x"})
    assert raised.value.status == 502 and raised.value.detail is None


def test_the_rate_limit_is_enforced_with_its_headers(emulator: ReplicateEmulator) -> None:
    emulator.behaviour.creates_per_minute = 2
    with api(emulator) as http:
        answers = [http.post(f"/v1/models/{MODEL}/predictions", json={"input": {"prompt": "x"}}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[1].headers["ratelimit-remaining"] == "0"
    assert answers[2].headers["ratelimit-remaining"] == "0"
    assert "resets in ~" in answers[2].json()["detail"]


def test_webhook_secret(emulator: ReplicateEmulator) -> None:
    assert replicate.Client().webhooks.default.secret().key.startswith("whsec_")


def test_stopping_leaves_no_thread_behind(portrait: bytes) -> None:
    before = set(threading.enumerate())
    with ReplicateEmulator(behaviour=Behaviour(latency_s=30)) as emulator:
        env = {**os.environ, **emulator.env()}
        # A held Prefer: wait request and an idle keep-alive connection are both cut at stop.
        held = subprocess.Popen(
            [sys.executable, "-c", f"import replicate; replicate.Client().run({MODEL!r}, input={{'prompt': 'x'}})"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        with api(emulator) as http:
            http.get("/v1/predictions")
            while emulator.account.counters().create_requests == 0 and held.poll() is None:
                threading.Event().wait(0.02)
    held.wait(timeout=10)
    assert set(threading.enumerate()) <= before


def test_it_runs_standalone(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "actor_pipeline_tests.replicate_emulator", "--port", "0", "--latency", "0.01"],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        env = dict(line.removeprefix("export ").strip().split("=", 1) for line in lines[1:])
        with httpx.Client(base_url=env["REPLICATE_BASE_URL"]) as http:
            answer = http.get("/v1/predictions", headers={"Authorization": f"Bearer {env['REPLICATE_API_TOKEN']}"})
        assert answer.status_code == 200 and Path(env["SSL_CERT_FILE"]).exists()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
