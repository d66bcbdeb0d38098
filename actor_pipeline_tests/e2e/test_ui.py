"""End to end under the real webserver and daemon (``dagster dev``), with the UI driven in
headless Chromium:

- a portrait dropped in the inbox becomes a training set with no manual step, and the UI shows
  the asset graph and the actor's partitions (preview backend);
- two failed shots rerun from the UI (asset page, Materialize, "only failed and missing") create
  exactly two new predictions, counted by the Replicate emulator, and the set is completed.

Screenshots and the servers' logs go to ``test-artifacts/``.
"""

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.e2e.devserver import REPO, DagsterDev, dagster_dev, instance_home, wait_for
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
ASSETS = ["normalized_portrait", "prompt_set", "training_image", "debug_grid", "training_manifest"]
USER = "u1"
BUDGET_S = 150  # per test, start-up and shutdown included
UI_TIMEOUT_MS = 30_000


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it with apt-get install chromium")
    pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) to run the UI tests")


@contextmanager
def chromium_page() -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(UI_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


class Deployment:
    """``dagster dev`` on the shipped instance configuration, with a local inbox and output."""

    def __init__(self, tmp_path: Path, name: str, env: Mapping[str, str] = {}) -> None:
        self.tmp_path, self.name, self.started = tmp_path, name, time.monotonic()
        self.inbox, self.out = tmp_path / "inbox", tmp_path / "out"
        self.env = {"ACTOR_PIPELINE_OUTPUT_DIR": str(self.out), "ACTOR_PIPELINE_INBOX": str(self.inbox), **env}

    @contextmanager
    def running(self) -> Iterator[DagsterDev]:
        with dagster_dev(
            instance_home(self.tmp_path / "home"), self.env, ARTIFACTS / f"{self.name}-dagster-dev.log"
        ) as server:
            yield server
        assert time.monotonic() - self.started < BUDGET_S

    def drop(self, actor: str) -> None:
        (self.inbox / USER).mkdir(parents=True, exist_ok=True)
        (self.inbox / USER / f"{actor}.json").write_text('{"actor_type": "human", "actor_sex": "female"}')
        shutil.copy(SAMPLE_PORTRAIT, self.inbox / USER / f"{actor}.jpg")

    def manifest(self, actor: str) -> Path:
        return self.out / USER / "custom-actors" / actor / "training_data" / "manifest.json"

    def wait_for_manifest(self, server: DagsterDev, actor: str, complete: bool = False) -> dict[str, Any]:
        path = self.manifest(actor)

        def ready() -> dict[str, Any] | None:
            manifest = json.loads(path.read_text()) if path.exists() else None
            return manifest if manifest and (not complete or not manifest["failed"]) else None

        try:
            return wait_for(f"{actor}'s {'complete ' if complete else ''}manifest", ready, timeout_s=90)
        except TimeoutError as exc:
            pytest.fail(f"{exc}; dagster dev's log ends with:\n{server.log_tail()}")


def test_a_dropped_portrait_becomes_a_set_shown_in_the_ui(tmp_path: Path) -> None:
    require_chromium()
    deployment = Deployment(tmp_path, "e2e-inbox")
    with deployment.running() as server:
        deployment.drop("e2e-actor")
        manifest = deployment.wait_for_manifest(server, "e2e-actor")
        assert manifest["totals"]["generated"] == manifest["totals"]["target"] == 17 and not manifest["failed"]
        assert manifest["backend"] == "preview"

        with chromium_page() as page:
            page.goto(f"{server.url}/asset-groups/training_set")
            # Graph nodes, not the list beside the graph (CSS-module class of dagster-webserver 1.13).
            nodes = page.locator('[class*="AssetNode_assetName"]')
            for name in ASSETS:
                expect(nodes.filter(has_text=name).first).to_be_visible()
            assert sorted(text.strip() for text in nodes.all_inner_texts()) == sorted(ASSETS)
            # Statuses load after the graph: one actor, so 17 image partitions and 1 of the others.
            expect(page.get_by_text("17 partitions", exact=True)).to_be_visible()
            expect(page.get_by_text("1 partition", exact=True)).to_have_count(4)
            page.screenshot(path=ARTIFACTS / "e2e-asset-graph.png")

            open_image_partitions(page, server)
            expect(page.get_by_text("e2e-actor", exact=True).first).to_be_visible()
            expect(page.get_by_text("Materialized (17)")).to_be_visible()
            expect(page.get_by_text("Failed (0)")).to_be_visible()
            page.screenshot(path=ARTIFACTS / "e2e-training-image-partitions.png")


def test_rerunning_two_failed_shots_from_the_ui_creates_exactly_two_predictions(tmp_path: Path) -> None:
    require_chromium()
    failing = Behaviour(latency_s=0.2, failing=("woodcut print", "gouache painting"))  # words of two prompts
    with ReplicateEmulator(behaviour=failing) as emulator:
        deployment = Deployment(tmp_path, "e2e-rerun", emulator.env())
        with deployment.running() as server:
            deployment.drop("rerun-actor")
            manifest = deployment.wait_for_manifest(server, "rerun-actor")
            assert sorted(f["shot_id"] for f in manifest["failed"]) == ["gouache", "woodcut"]
            assert emulator.account.counters().predictions_created == 17
            emulator.behaviour.failing = ()

            with chromium_page() as page:
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


def backfill_statuses(server: DagsterDev) -> list[str]:
    data = server.graphql("{ partitionBackfillsOrError { ... on PartitionBackfills { results { status } } } }")
    return [b["status"] for b in data["partitionBackfillsOrError"]["results"]]
