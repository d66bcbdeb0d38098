"""The emulated trainings API, through the real ``replicate`` client: what the training code relies on."""

import io
import time
import zipfile

import httpx
import pytest
import replicate
from replicate.exceptions import ReplicateError

from actor_pipeline_tests.replicate_emulator import Fault, ReplicateEmulator
from actor_pipeline_tests.replicate_emulator.trainings import LORA_MODEL, TRAINER, TRAINER_VERSION


def tiny_zip(images: int = 3) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(images):
            image = io.BytesIO()
            Image.new("RGB", (64, 64), (index * 40, 90, 200)).save(image, "JPEG")
            archive.writestr(f"{index:02d}.jpg", image.getvalue())
            archive.writestr(f"{index:02d}.txt", "TOK a woman, a photo")
    return buffer.getvalue()


def client(emulator: ReplicateEmulator) -> replicate.Client:
    return replicate.Client(emulator.token, base_url=emulator.base_url)


def start(api: replicate.Client, destination: str = "emulated-user/actor-a", steps: int = 100) -> replicate.training.Training:
    return api.trainings.create(
        model=TRAINER,
        version=TRAINER_VERSION,
        input={"input_images": io.BytesIO(tiny_zip()), "trigger_word": "TOK", "autocaption": False, "steps": steps},
        destination=destination,
    )


def wait(api: replicate.Client, training_id: str) -> replicate.training.Training:
    for _ in range(200):
        training = api.trainings.get(training_id)
        if training.status in ("succeeded", "failed", "canceled"):
            return training
        time.sleep(0.05)
    pytest.fail("the training did not end")


def test_a_destination_that_does_not_exist_is_404_and_models_are_created_private_for_the_account_only(
    emulator: ReplicateEmulator,
) -> None:
    api = client(emulator)
    with pytest.raises(ReplicateError) as missing:
        start(api)
    assert missing.value.status == 404 and "destination does not exist" in str(missing.value.detail)
    assert api.accounts.current().username == "emulated-user"
    created = api.models.create(owner="emulated-user", name="actor-a", visibility="private", hardware="gpu-t4")
    assert created.visibility == "private" and api.models.get("emulated-user/actor-a").name == "actor-a"
    with pytest.raises(ReplicateError) as forbidden:
        api.models.create(owner="someone-else", name="x", visibility="private", hardware="gpu-t4")
    assert forbidden.value.status == 403
    assert emulator.account.counters().trainings_created == 0


def test_a_training_grows_step_logs_then_succeeds_with_version_and_weights_billed_for_its_time(
    emulator: ReplicateEmulator,
) -> None:
    emulator.behaviour.training_s = 0.5
    api = client(emulator)
    api.models.create(owner="emulated-user", name="actor-a", visibility="private", hardware="gpu-t4")
    training = start(api)
    assert training.status == "starting" and training.input["input_images"].startswith(emulator.base_url)
    done = wait(api, training.id)
    assert done.status == "succeeded", done
    assert done.output["version"].startswith("emulated-user/actor-a:")
    assert done.output["weights"].endswith("/trained_model.tar")
    assert "100/100 [" in (done.logs or "")
    counters = emulator.account.counters()
    assert counters.trainings_created == counters.trainings_billed == 1
    assert counters.training_seconds_billed == pytest.approx(0.5)
    raw = httpx.get(f"{emulator.base_url}/v1/trainings/{training.id}", headers={"Authorization": f"Bearer {emulator.token}"})
    assert raw.json()["metrics"]["predict_time"] == pytest.approx(0.5)

    lora = api.models.predictions.create(
        model=LORA_MODEL, input={"prompt": "TOK a woman at sea", "lora_weights": done.output["weights"], "output_format": "jpg"}
    )
    for _ in range(100):
        lora = api.predictions.get(lora.id)
        if lora.status == "succeeded":
            break
        time.sleep(0.05)
    assert isinstance(lora.output, list) and len(lora.output) == 1


def test_cancel_list_newest_first_paginated_a_failure_and_a_lost_create_answer(emulator: ReplicateEmulator) -> None:
    emulator.behaviour.training_s = 30.0
    emulator.behaviour.page_size = 2
    api = client(emulator)
    api.models.create(owner="emulated-user", name="actor-a", visibility="private", hardware="gpu-t4")
    first = start(api)
    time.sleep(0.1)
    canceled = api.trainings.cancel(first.id)
    assert canceled.status == "canceled"
    emulator.behaviour.failing_trainings = 1
    emulator.behaviour.training_s = 0.2
    failed = wait(api, start(api).id)
    assert failed.status == "failed" and failed.error
    emulator.account.inject("train", Fault(None, after_create=True))
    with pytest.raises(httpx.HTTPError):
        start(api)
    page = api.trainings.list()
    assert len(page.results) == 2 and page.next
    rest = api.trainings.list(page.next)
    ids = [t.id for t in page.results + rest.results]
    assert len(ids) == 3 and ids[-1] == first.id  # newest first; the lost one is listed
    assert emulator.account.counters().trainings_created == 3
