"""End to end under the real webserver and daemon (``dg dev``, as ``make ui``), with the UI driven in
headless Chromium:

- a portrait dropped in the inbox becomes a training set with no manual step, and the UI shows
  the asset graph and the actor's partitions (preview backend);
- two failed shots rerun from the UI (asset page, Materialize, "only failed and missing") create
  exactly two new predictions, counted by the Replicate emulator, and the set is completed.

Screenshots and the servers' logs go to ``test-artifacts/``.
"""

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from actor_pipeline_tests.e2e.devserver import ARTIFACTS, DagsterDev, Deployment, backfill_statuses, wait_for
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

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


def test_rerunning_two_failed_shots_from_the_ui_creates_exactly_two_predictions(tmp_path: Path, page: Page) -> None:
    failing = Behaviour(latency_s=0.2, failing=("woodcut print", "gouache painting"))  # words of two prompts
    with ReplicateEmulator(behaviour=failing) as emulator:
        # Two chains and a backfill (its daemon ticks every 30 s): over the default budget since
        # image runs check the set's quality (15-35 s a run on a busy 2-CPU machine).
        deployment = Deployment(tmp_path, "e2e-rerun", emulator.env(), budget_s=240)
        with deployment.running() as server:
            deployment.drop("rerun-actor")
            manifest = deployment.wait_for_manifest(server, "rerun-actor")
            assert sorted(f["shot_id"] for f in manifest["failed"]) == ["gouache", "woodcut"]
            assert emulator.account.counters().predictions_created == 17
            emulator.behaviour.failing = ()

            open_image_partitions(page, server)
            expect(page.get_by_text("Failed (2)")).to_be_visible()
            page.get_by_role("button", name="Materialize…").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_role("button", name="All", exact=True).nth(0).click()  # every actor
            dialog.get_by_role("button", name="All", exact=True).nth(1).click()  # every shot
            dialog.get_by_text("Backfill only failed and missing partitions within selection").click()
            page.screenshot(path=ARTIFACTS / "e2e-rerun-dialog.png")
            dialog.get_by_role("button", name="Launch backfill").click()

            deployment.wait_for_manifest(server, "rerun-actor", complete=True)
            wait_for("the backfill to complete", lambda: backfill_statuses(server) == ["COMPLETED_SUCCESS"], 60)
            assert emulator.account.counters().predictions_created == 17 + 2

            open_image_partitions(page, server)
            expect(page.get_by_text("Materialized (17)")).to_be_visible()
            expect(page.get_by_text("Failed (0)")).to_be_visible()
            page.screenshot(path=ARTIFACTS / "e2e-rerun-partitions.png")


def open_image_partitions(page: Page, server: DagsterDev) -> None:
    page.goto(f"{server.url}/assets/training_image?view=partitions")

