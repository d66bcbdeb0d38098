"""One run reads its actor once: the registration once, the prompt set at most once (not at all
when the run planned it), and the portrait is decoded once (``ActorContext``, handed down)."""

from collections import Counter
from pathlib import Path

import pytest

from actor_pipeline import registry, stages
from actor_pipeline.defs.assets.images import image_run_config
from actor_pipeline.defs.partitions import actor_image_range, actors_partitions
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.layout import ActorLayout, registration_key
from actor_pipeline_tests.defs.pipeline import Pipeline

LAYOUT = ActorLayout("u1", "alice")


class Reads:
    """Every key read from folder storage, and every portrait normalized, from now on."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: Counter[str] = Counter()
        self.decoded = 0
        get = FolderStorage.get

        def counted_get(storage: FolderStorage, key: str) -> bytes:
            self.keys[key] += 1
            return get(storage, key)

        monkeypatch.setattr(FolderStorage, "get", counted_get)
        for module in (registry, stages):
            normalize = module.normalize_portrait

            def counted_normalize(*args: object, _normalize=normalize, **kwargs: object):  # type: ignore[no-untyped-def]
                self.decoded += 1
                return _normalize(*args, **kwargs)

            monkeypatch.setattr(module, "normalize_portrait", counted_normalize)


def test_the_inbox_run_of_a_new_actor_reads_its_registration_once(
    pipeline: Pipeline, portrait_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.instance.add_dynamic_partitions(actors_partitions.name, ["alice"])
    reads = Reads(monkeypatch)
    start = {"portrait": str(portrait_file), "user_id": "u1", "actor_type": "human"}
    result = pipeline.run(
        "make_training_images", tags=actor_image_range("alice"), run_config=image_run_config(start=start, finish={})
    )
    assert result.success
    # Registering looks for an earlier registration once; the run goes on with what it wrote.
    assert reads.keys[registration_key("alice")] == 1
    assert reads.keys[LAYOUT.prompt_set] == 0  # planned by this run, kept
    assert reads.decoded == 1
    assert pipeline.storage.head(LAYOUT.manifest) is not None


def test_a_rerun_of_a_registered_actor_reads_registration_and_prompts_once(
    pipeline: Pipeline, portrait_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.register(portrait_bytes)
    config = image_run_config(start={}, finish={})
    assert pipeline.run("make_training_images", tags=actor_image_range("alice"), run_config=config).success
    reads = Reads(monkeypatch)
    again = pipeline.run("make_training_images", tags=actor_image_range("alice"), run_config=config)
    assert again.success
    assert reads.keys[registration_key("alice")] == 1
    assert reads.keys[LAYOUT.prompt_set] == 0  # start re-plans the prompts, and keeps them
    assert reads.decoded == 0  # the normalized portrait was made from this very source
    finish_only = pipeline.run("make_training_images", tags=actor_image_range("alice"), run_config=image_run_config(finish={}))
    assert finish_only.success
    assert reads.keys[registration_key("alice")] == 2
    assert reads.keys[LAYOUT.prompt_set] == 1
