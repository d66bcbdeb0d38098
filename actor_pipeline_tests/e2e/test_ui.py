"""End to end under the real webserver and daemon (``dg dev``, as ``make ui``), with the UI driven in
headless Chromium:

a portrait dropped in the inbox becomes a training set with no manual step, and the UI shows the
asset graph and the actor's partitions (preview backend). Rerunning failed shots from the UI is
``test_ui_start.py``'s step 4.

Screenshots and the servers' logs go to ``test-artifacts/``.
"""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from actor_pipeline_tests.e2e.devserver import ARTIFACTS, DagsterDev, Deployment

pytestmark = pytest.mark.e2e

ASSETS = ["normalized_portrait", "prompt_set", "training_image", "debug_grid", "lora_bundle", "training_manifest"]


def test_a_dropped_portrait_becomes_a_set_shown_in_the_ui(tmp_path: Path, page: Page) -> None:
    deployment = Deployment(tmp_path, "e2e-inbox")
    with deployment.running() as server:
        deployment.drop("e2e-actor")
        manifest = deployment.wait_for_manifest(server, "e2e-actor")
        assert manifest["totals"]["generated"] == manifest["totals"]["target"] == 17 and not manifest["failed"]
        assert manifest["backend"] == "preview"

        # The group's own lineage page (/asset-groups alone is the global lineage, which shows
        # each group collapsed now that there are two: training_set and inbox).
        page.goto(f"{server.url}/locations/actor_pipeline/asset-groups/training_set")
        # Graph nodes, not the list beside the graph (CSS-module class of dagster-webserver 1.13).
        nodes = page.locator('[class*="AssetNode_assetName"]')
        for name in ASSETS:
            expect(nodes.filter(has_text=name).first).to_be_visible()
        assert sorted(text.strip() for text in nodes.all_inner_texts()) == sorted(ASSETS)
        # Statuses load after the graph: one actor, so 17 image partitions and 1 of the others.
        expect(page.get_by_text("17 partitions", exact=True)).to_be_visible()
        expect(page.get_by_text("1 partition", exact=True)).to_have_count(len(ASSETS) - 1)
        page.screenshot(path=ARTIFACTS / "e2e-asset-graph.png")

        open_image_partitions(page, server)
        expect(page.get_by_text("e2e-actor", exact=True).first).to_be_visible()
        expect(page.get_by_text("Materialized (17)")).to_be_visible()
        expect(page.get_by_text("Failed (0)")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "e2e-training-image-partitions.png")


def open_image_partitions(page: Page, server: DagsterDev) -> None:
    page.goto(f"{server.url}/assets/training_image?view=partitions")

