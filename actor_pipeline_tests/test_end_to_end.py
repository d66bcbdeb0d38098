"""The whole graph for one actor in a temporary Dagster instance (preview backend, local storage)."""

import io
import json
import zipfile
from pathlib import Path

import dagster as dg
from PIL import Image, ImageOps

from actor_pipeline.defs.assets import training_image
from actor_pipeline.defs.partitions import CATALOG, image_key, image_partitions
from actor_pipeline_tests.support.actors import run_actor
from actor_pipeline_tests.support.backends import FlakyBackend


def partition_statuses(instance: dg.DagsterInstance) -> dict[str, dg.AssetPartitionStatus | None]:
    keys = [str(image_key("alice", shot_id)) for shot_id in CATALOG.ids]
    found = instance.get_status_by_partition(training_image.key, keys, image_partitions) or {}
    return {key: found.get(key) for key in keys}


def test_whole_graph_makes_a_complete_set(tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes) -> None:
    result, storage, _ = run_actor(tmp_path, instance, portrait_bytes)
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
        assert image.prompt.count("woman") >= 1 and image.status == "succeeded"
    assert json.loads(storage.get("u1/custom-actors/alice/training_data/manifest.json"))["totals"]["generated"] == 17
    with Image.open(io.BytesIO(storage.get(manifest.grid.key))) as grid:
        assert grid.format == "JPEG" and grid.width > 2000
    assert set(partition_statuses(instance).values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    summary = result.as_dict()
    assert summary["total_training_images"] == summary["target_training_images"] == 17
    assert summary["training_image_urls"] == [image.url for image in manifest.images]


def test_one_failed_shot_fails_alone_and_a_rerun_makes_only_it(
    tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes
) -> None:
    backend = FlakyBackend(fail={"charcoal"})
    result, storage, _ = run_actor(tmp_path, instance, portrait_bytes, backend)

    statuses = partition_statuses(instance)
    failed_key = str(image_key("alice", "charcoal"))
    assert statuses.pop(failed_key) == dg.AssetPartitionStatus.FAILED
    assert set(statuses.values()) == {dg.AssetPartitionStatus.MATERIALIZED} and len(statuses) == 16
    assert [(f.shot_id, f.status) for f in result.manifest.failed] == [("charcoal", "failed")]
    assert "injected failure" in result.manifest.failed[0].error
    assert result.as_dict()["total_training_images"] == 16
    assert len(backend.calls) == 17
    bundle = result.manifest.bundle  # the LoRA bundle holds what was made, and says what was not
    assert bundle and result.as_dict()["bundle_url"] == bundle.url and len(bundle.report.images) == 16
    assert [(o.shot_id, o.reason) for o in bundle.report.left_out] == [("charcoal", "failed: injected failure for charcoal")]
    with zipfile.ZipFile(io.BytesIO(storage.get(bundle.key))) as archive:
        names = archive.namelist()
        assert len(names) == 32 and "10.jpg" not in names  # charcoal is shot 10
        assert archive.read("08.txt").decode().startswith("TOK, a woman, black and white pen and ink drawing")

    backend.fail.clear()
    backend.calls.clear()
    rerun, _, _ = run_actor(tmp_path, instance, portrait_bytes, backend)
    assert backend.calls == ["charcoal"]
    assert rerun.manifest.totals.generated == 17 and not rerun.manifest.failed
    assert set(partition_statuses(instance).values()) == {dg.AssetPartitionStatus.MATERIALIZED}
    entry = next(i for i in rerun.manifest.images if i.shot_id == "charcoal")
    assert entry.attempts == 2


def test_materializing_one_failed_partition_regenerates_only_it(
    tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes
) -> None:
    backend = FlakyBackend(fail={"woodcut", "gouache"})
    _, _, resources = run_actor(tmp_path, instance, portrait_bytes, backend)
    backend.fail.clear()
    backend.calls.clear()

    from actor_pipeline.defs.assets import ALL_ASSETS

    for shot_id in ("woodcut", "gouache"):  # as a user selecting FAILED partitions in the UI does
        dg.materialize(ALL_ASSETS, selection=[training_image], partition_key=str(image_key("alice", shot_id)),
                       instance=instance, resources=resources)
    assert sorted(backend.calls) == ["gouache", "woodcut"]
    assert set(partition_statuses(instance).values()) == {dg.AssetPartitionStatus.MATERIALIZED}


def test_unchanged_rerun_reuses_every_image_and_force_regenerates(
    tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes
) -> None:
    backend = FlakyBackend()
    run_actor(tmp_path, instance, portrait_bytes, backend)
    backend.calls.clear()
    run_actor(tmp_path, instance, portrait_bytes, backend)
    assert backend.calls == []
    run_actor(tmp_path, instance, portrait_bytes, backend, force=True)
    assert len(backend.calls) == 17


def test_a_new_portrait_regenerates_the_set(tmp_path: Path, instance: dg.DagsterInstance, portrait_bytes: bytes) -> None:
    backend = FlakyBackend()
    first, _, _ = run_actor(tmp_path, instance, portrait_bytes, backend)
    backend.calls.clear()
    other = io.BytesIO()  # another person, as far as the pipeline knows: the sample, mirrored
    ImageOps.mirror(Image.open(io.BytesIO(portrait_bytes))).save(other, "JPEG")
    second, _, _ = run_actor(tmp_path, instance, other.getvalue(), backend)
    assert len(backend.calls) == 17
    assert first.manifest.portrait.sha256 != second.manifest.portrait.sha256


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
    }
