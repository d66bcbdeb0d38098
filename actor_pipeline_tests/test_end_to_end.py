"""The whole graph for one actor in a temporary Dagster instance (preview backend, local storage)."""

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import dagster as dg
from PIL import Image

from actor_pipeline.actor_context import ActorContext
from actor_pipeline.commands.materialize import ActorResult, materialize_actor
from actor_pipeline.defs.assets import ALL_ASSETS, training_image
from actor_pipeline.defs.partitions import CATALOG, image_key, image_partitions
from actor_pipeline.defs.settings import PipelineSettings
from actor_pipeline.registry import NewActor, register_actor
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline_tests.support.backends import FlakyBackend, generator_for


def run_actor(
    tmp_path: Path,
    instance: dg.DagsterInstance,
    portrait: bytes,
    backend: FlakyBackend | None = None,
    *,
    force: bool = False,
    identity_check: bool = False,
) -> tuple[ActorResult, FolderStorage, dict[str, Any]]:
    """Make actor ``alice``'s set into ``tmp_path/store``, with ``backend`` (else the preview
    backend); returns the result, the storage and the resources used."""
    settings = PipelineSettings.configure(storage={"backend": "local", "local_dir": str(tmp_path / "store")})
    resources = settings.resources()
    if backend:
        resources["generator"] = generator_for(backend, identity_check=identity_check)
    storage = resources["storage"].create_storage()
    registration, _ = register_actor(storage, NewActor(actor_id="alice", portrait="portrait.jpg", user_id="u1", actor_sex="female"), portrait)
    actor = ActorContext(storage, registration)
    result = materialize_actor(actor, instance=instance, resources=resources, force=force)
    return result, storage, resources


def partition_statuses(instance: dg.DagsterInstance) -> dict[str, dg.AssetPartitionStatus | None]:
    keys = [str(image_key("alice", shot_id)) for shot_id in CATALOG.ids]
    found = instance.get_status_by_partition(training_image.key, keys, image_partitions) or {}
    return {key: found.get(key) for key in keys}


def test_whole_graph_makes_a_complete_set(tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes) -> None:
    backend = FlakyBackend()
    result, storage, _ = run_actor(tmp_path, instance, portrait_bytes, backend, identity_check=True)
    manifest = result.manifest

    assert manifest.totals.target == manifest.totals.generated == 17 and not manifest.failed
    assert [image.index for image in manifest.images] == list(range(1, 18))
    for image in manifest.images:
        assert image.key == f"u1/custom-actors/alice/training_data/actor_alice_td_{image.index:02d}.jpg"
        data = storage.get(image.key)
        stored = storage.head(image.key)
        assert stored and stored.sha256 == image.sha256 and stored.size == image.bytes == len(data)
        with Image.open(io.BytesIO(data)) as decoded:
            assert decoded.format == "JPEG" and decoded.size == (image.width, image.height) == (1392, 752)
        assert image.prompt.count("woman") >= 1 and image.status == "succeeded" and image.qc == "passed"
    # Every check ran, faces included: the portrait's face is found on the photoreal shots.
    identity = {image.shot_id: next(r for r in image.quality if r.check == "identity") for image in manifest.images}
    assert identity["eye_contact_closeup"].outcome == "passed" and identity["eye_contact_closeup"].blocking
    assert json.loads(storage.get("u1/custom-actors/alice/training_data/manifest.json"))["totals"]["generated"] == 17
    with Image.open(io.BytesIO(storage.get(manifest.grid.key))) as grid:
        assert grid.format == "JPEG" and grid.width > 2000
    assert set(partition_statuses(instance).values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    summary = result.as_dict()
    assert summary["total_training_images"] == summary["target_training_images"] == 17
    assert summary["training_image_urls"] == [image.url for image in manifest.images]

    # Reuse without ``force`` is the reruns' test below; a new portrait's, the runner's.
    backend.calls.clear()
    run_actor(tmp_path, instance, portrait_bytes, backend, force=True)
    assert len(backend.calls) == 17


def test_failed_shots_fail_alone_and_reruns_make_only_them(
    tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes
) -> None:
    backend = FlakyBackend(fail={"charcoal", "woodcut"})
    result, storage, resources = run_actor(tmp_path, instance, portrait_bytes, backend)

    statuses = partition_statuses(instance)
    failed = {str(image_key("alice", shot)) for shot in ("charcoal", "woodcut")}
    assert {statuses.pop(key) for key in failed} == {dg.AssetPartitionStatus.FAILED}
    assert set(statuses.values()) == {dg.AssetPartitionStatus.MATERIALIZED} and len(statuses) == 15
    assert [(f.shot_id, f.status) for f in result.manifest.failed] == [("charcoal", "failed"), ("woodcut", "failed")]
    assert "injected failure" in result.manifest.failed[0].error
    assert result.as_dict()["total_training_images"] == 15
    assert len(backend.calls) == 17
    bundle = result.manifest.bundle  # the LoRA bundle holds what was made, and says what was not
    assert bundle and result.as_dict()["bundle_url"] == bundle.url and len(bundle.report.images) == 15
    assert [(o.shot_id, o.reason) for o in bundle.report.left_out] == [
        ("charcoal", "failed: injected failure for charcoal"),
        ("woodcut", "failed: injected failure for woodcut"),
    ]
    with zipfile.ZipFile(io.BytesIO(storage.get(bundle.key))) as archive:
        names = archive.namelist()
        assert len(names) == 30 and not {"10.jpg", "11.jpg"} & set(names)  # charcoal and woodcut
        assert archive.read("08.txt").decode().startswith("TOK, a woman, black and white pen and ink drawing")

    backend.fail.clear()
    backend.calls.clear()
    # As a user selecting one FAILED partition in the UI does.
    dg.materialize(ALL_ASSETS, selection=[training_image], partition_key=str(image_key("alice", "woodcut")),
                   instance=instance, resources=resources)
    assert backend.calls == ["woodcut"]
    assert partition_statuses(instance)[str(image_key("alice", "woodcut"))] == dg.AssetPartitionStatus.MATERIALIZED

    backend.calls.clear()
    rerun, _, _ = run_actor(tmp_path, instance, portrait_bytes, backend)  # as `generate` again does
    assert backend.calls == ["charcoal"]
    assert rerun.manifest.totals.generated == 17 and not rerun.manifest.failed
    assert set(partition_statuses(instance).values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    assert {i.shot_id: i.attempts for i in rerun.manifest.images if i.shot_id in ("charcoal", "woodcut")} == {
        "charcoal": 2,
        "woodcut": 2,
    }


def test_definitions_load_the_assets() -> None:
    from actor_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "normalized_portrait",
        "prompt_set",
        "training_image",
        "training_manifest",
        "debug_grid",
        "lora_bundle",
        "inbox_rejects",  # observed by the inbox sensor, never materialized
        "trained_lora",  # made only when asked for
        "lora_validation",
    }
