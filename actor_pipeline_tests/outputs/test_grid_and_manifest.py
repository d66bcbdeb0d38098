import asyncio
import io
import json

import jsonschema
from PIL import Image

from actor_pipeline.catalog.model import load_catalog
from actor_pipeline.generation.runner import RunLimits
from actor_pipeline.outputs.grid import COLUMNS, TILE_H, TILE_W, Tile, render_grid
from actor_pipeline.outputs.manifest import SCHEMA_FILE as SCHEMA
from actor_pipeline.outputs.manifest import Manifest
from actor_pipeline.registry import NewActor
from actor_pipeline.stages import bundle_stage, generate_stage, grid_stage, manifest_stage, start_actor
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline.storage.layout import ActorLayout
from actor_pipeline_tests.support.backends import FlakyBackend

CATALOG = load_catalog()


def test_grid_has_a_tile_per_shot_and_marks_missing_ones() -> None:
    good = Image.new("RGB", (1392, 752), (0, 200, 0))
    tiles = [Tile("Portrait", "portrait", good)] + [Tile(f"{i:02d}", "photoreal", good) for i in range(1, 17)]
    tiles.append(Tile("17 Missing", "color_stylized", None, "failed"))
    with Image.open(io.BytesIO(render_grid("alice", tiles))) as grid:
        assert grid.format == "JPEG"
        assert grid.width >= COLUMNS * TILE_W and grid.height >= 3 * TILE_H
        rgb = grid.convert("RGB")
        # the last tile (row 3, column 6) is a red-bordered placeholder, the others green images
        last_x = grid.width - TILE_W // 2 - 20
        last_y = grid.height - TILE_H // 2 - 60
        red, green, _ = rgb.getpixel((grid.width - 12, last_y))
        assert red > 150 and green < 120
        assert rgb.getpixel((last_x - TILE_W, last_y))[1] > 150


def test_the_published_schema_is_the_models() -> None:
    """``manifest.schema.json`` is what consumers validate against: a change to the manifest's
    shape must update it on purpose (and bump ``schema_version`` where it breaks them)."""
    assert json.loads(SCHEMA.read_text()) == Manifest.model_json_schema()


def test_manifest_matches_its_json_schema_and_lists_failures(storage: FolderStorage, portrait_bytes: bytes) -> None:
    """The stages behind the assets, without Dagster: a set with one failed shot, then its manifest."""
    backend = FlakyBackend(fail={"watercolor"})
    actor = start_actor(storage, NewActor(actor_id="alice", portrait="portrait.jpg", user_id="u1", actor_sex="female"), portrait_bytes)
    actor.plan_prompts(CATALOG)
    asyncio.run(generate_stage(actor, backend, CATALOG.ids, limits=RunLimits(), maker="test"))
    grid_stage(actor)
    bundle_stage(actor, CATALOG)
    _, url = manifest_stage(actor, (backend.name, backend.model))
    key = ActorLayout("u1", "alice").manifest
    assert url == storage.url(key)
    document = json.loads(storage.get(key))
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert document["schema_version"] == 1
    assert document["totals"] == {
        "target": 17, "generated": 16, "failed": 1, "cost_usd": 0.0, "usable": 16, "cost_per_usable_image_usd": 0.0
    }
    assert document["failed"][0]["shot_id"] == "watercolor" and "injected" in document["failed"][0]["error"]
    assert document["portrait"]["sha256"] == storage.head(document["portrait"]["key"]).sha256
    assert document["backend"] == "preview" and document["descriptor"] == "woman"
    entry = document["images"][15]
    assert entry["shot_id"] == "watercolor" and entry["status"] == "failed" and entry["key"] is None
    assert {"shot_id", "index", "category", "label", "prompt", "seed", "url", "sha256", "width", "height", "bytes",
            "prediction_id", "cost_usd", "duration_s", "status"} <= set(entry)
    assert document["ledger"]["cost_usd"] == 0.0
