"""A new actor's whole life in the UI alone, under the real webserver and daemon (``dg dev``, as
``make ui``) in headless Chromium, with the Replicate emulator failing two shots:

1. start a NEW actor: on the ``prepare_actor`` job, "Open launchpad", add the actor's partition
   and give the portrait (the bundled sample's path) and the actor's details as the
   ``normalized_portrait`` config; launch; the sensors carry it to the set's manifest;
2. see its thumbnails (a shot's ``training_image`` partition, the portrait) and the contact sheet
   on ``debug_grid``: ``<img>`` elements whose ``src`` is a ``data:`` URI, decoded by the browser;
3. find a failed shot's status, error, attempts, prediction id and cost (its partition's
   observation, on the asset's Events tab) and what the images run made, failed and cost (its
   tags, on the Runs page);
4. rerun only the failed shots (Materialize, "Backfill only failed and missing"): exactly two more
   predictions, counted by the emulator, and the set is complete;
5. drop a second actor's portrait in the inbox: the daemon's sensors make its set with no manual
   step, and the asset graph shows the six assets with both actors' partitions.

Every step asserts on the DOM (and on the run's config through GraphQL); a screenshot of each is
kept in ``test-artifacts/e2e-start-*.png`` as evidence. Selectors name the dagster-webserver 1.13
element they target.
"""

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Locator, Page, expect

from actor_pipeline.samples import SAMPLE_PORTRAIT
from actor_pipeline_tests.e2e.devserver import ARTIFACTS, USER, DagsterDev, Deployment, wait_for
from actor_pipeline_tests.replicate_emulator import Behaviour, ReplicateEmulator

pytestmark = pytest.mark.e2e

ACTOR = "ui-actor"
DROPPED = "inbox-actor"  # step 5's, from the inbox
ASSETS = ["normalized_portrait", "prompt_set", "training_image", "debug_grid", "lora_bundle", "training_manifest"]
# Words found in one default prompt each (and in their rewordings): woodcut and gouache fail.
FAILING = {"woodcut": "woodcut print", "gouache": "gouache painting"}
SHOTS = 17
# Start-up, five UI steps, three generation chains (each run worker takes seconds to start; the
# backfill daemon ticks every 30 s) and shutdown, with headroom for a busy 2-CPU machine.
BUDGET_S = 420
CHAIN_TIMEOUT_S = 150  # from a launch to the manifest it leads to
START_CONFIG = {
    "portrait": str(SAMPLE_PORTRAIT),
    "user_id": USER,
    "actor_type": "human",
    "actor_sex": "female",
}


def test_a_new_actor_started_seen_and_repaired_in_the_ui_alone(tmp_path: Path, page: Page) -> None:
    with ReplicateEmulator(behaviour=Behaviour(latency_s=0.2, failing=tuple(FAILING.values()))) as emulator:
        deployment = Deployment(tmp_path, "e2e-start", emulator.env(), budget_s=BUDGET_S)
        with deployment.running() as server:
            step = Steps(page, server, deployment.started)
            step.done("the webserver and daemon are up")

            # --- 1. Start a new actor from the Launchpad ---------------------------------------
            run_id = step.start_actor_in_launchpad(ACTOR, START_CONFIG)
            run = step.run(run_id)
            assert run["jobName"] == "prepare_actor"
            assert run["tags"]["dagster/partition"] == ACTOR
            assert yaml.safe_load(run["runConfigYaml"])["ops"] == {"normalized_portrait": {"config": START_CONFIG}}
            assert sorted(run["assets"]) == ["normalized_portrait", "prompt_set"]

            step.leave_while_the_daemon_works()
            manifest = deployment.wait_for_manifest(server, ACTOR, timeout_s=CHAIN_TIMEOUT_S)
            assert (manifest["actor_id"], manifest["user_id"], manifest["descriptor"]) == (ACTOR, USER, "woman")
            assert manifest["portrait"]["source"] == str(SAMPLE_PORTRAIT)
            assert sorted(f["shot_id"] for f in manifest["failed"]) == sorted(FAILING)
            assert manifest["totals"]["generated"] == SHOTS - 2
            counters = emulator.account.counters()
            assert (counters.predictions_created, counters.paid) == (SHOTS, SHOTS - 2)
            step.done("1. started from the launchpad; the set's manifest is written")

            # --- 2. Its thumbnails and contact sheet -------------------------------------------
            step.open_partition("training_image", ACTOR, "rain_street_run")
            step.expect_data_image(step.metadata_image("01 rain_street_run"))
            page.screenshot(path=ARTIFACTS / "e2e-start-2-shot-thumbnail.png")

            step.open_partition("normalized_portrait", ACTOR)
            step.expect_data_image(step.metadata_image(f"{ACTOR} (portrait)"))
            page.screenshot(path=ARTIFACTS / "e2e-start-2-portrait-thumbnail.png")

            step.open_partition("debug_grid", ACTOR)
            step.expect_data_image(step.metadata_image(f"{ACTOR} (contact sheet)"))
            page.screenshot(path=ARTIFACTS / "e2e-start-2-contact-sheet.png")
            step.done("2. thumbnails and contact sheet seen")

            # --- 3. What failed, why, and what it cost -----------------------------------------
            failed_prediction = prediction_for(emulator.account.predictions(), FAILING["woodcut"])
            step.open_partition("training_image", ACTOR, "woodcut")
            # The partition's panel: the red banner of a partition whose run failed.
            expect(page.get_by_text("failed, and did not materialize this asset")).to_be_visible()
            observation = step.latest_event(f"{ACTOR}|woodcut")
            expect(observation.get_by_text("observed in run")).to_be_visible()
            expect(step.metadata_value(observation, "status")).to_have_text("failed")
            expect(step.metadata_value(observation, "error")).to_contain_text(failed_prediction["id"])
            expect(step.metadata_value(observation, "error")).to_contain_text("the model crashed")
            expect(step.metadata_value(observation, "attempts")).to_have_text("1")
            expect(step.metadata_value(observation, "prediction_id")).to_have_text(failed_prediction["id"])
            expect(step.metadata_value(observation, "cost_usd")).to_have_text("0")  # no image, not billed
            page.screenshot(path=ARTIFACTS / "e2e-start-3-failed-shot.png")

            cost = round(manifest["ledger"]["cost_usd"], 4)
            assert cost > 0
            images_run = step.runs_list_row("make_training_images")
            for tag, value in (("made", SHOTS - 2), ("failed", 2), ("cost_usd", cost)):
                expect(images_run.get_by_text(f"actor_pipeline/{tag}: {value}", exact=True)).to_be_visible()
            page.screenshot(path=ARTIFACTS / "e2e-start-3-run-cost.png")
            step.done("3. the failed shot's error and cost, the run's made/failed/cost found")

            # --- 4. Rerun only what failed -----------------------------------------------------
            emulator.behaviour.failing = ()
            step.rerun_failed_and_missing_images(failed=2)
            step.done("4. backfill of failed and missing partitions launched")
            step.leave_while_the_daemon_works()
            backfill = wait_for("the backfill to end", lambda: ended_backfill(server), CHAIN_TIMEOUT_S)
            assert backfill["numPartitions"] == 2, backfill  # the two failed shots, nothing else
            assert backfill["status"] == "COMPLETED_SUCCESS", explain_backfill(server, backfill)
            deployment.wait_for_manifest(server, ACTOR, complete=True, timeout_s=CHAIN_TIMEOUT_S)
            counters = emulator.account.counters()
            assert (counters.predictions_created, counters.paid) == (SHOTS + 2, SHOTS)
            # The two new predictions are the two failed shots' prompts.
            again = [str(p["input"]["prompt"]) for p in emulator.account.predictions()[SHOTS:]]
            remade = sorted(shot for shot, words in FAILING.items() for prompt in again if words in prompt)
            assert remade == sorted(FAILING), again

            step.open_partition("training_image", ACTOR, "woodcut")
            expect(page.get_by_text("Materialized (17)")).to_be_visible()  # the status filters above the lists
            expect(page.get_by_text("Failed (0)")).to_be_visible()
            step.expect_data_image(step.metadata_image("11 woodcut"))
            page.screenshot(path=ARTIFACTS / "e2e-start-4-complete.png")
            step.done("4. the set is complete")

            # --- 5. A portrait dropped in the inbox ---------------------------------------------
            deployment.drop(DROPPED)
            step.leave_while_the_daemon_works()
            dropped = deployment.wait_for_manifest(server, DROPPED, timeout_s=CHAIN_TIMEOUT_S)
            assert dropped["totals"]["generated"] == dropped["totals"]["target"] == SHOTS and not dropped["failed"]
            assert emulator.account.counters().paid == 2 * SHOTS
            step.see_the_asset_graph(actors=2)
            page.screenshot(path=ARTIFACTS / "e2e-start-5-asset-graph.png")
            step.done("5. the dropped portrait's set is made; the asset graph shows both actors")


class Steps:
    """What a user does in the UI, one method per gesture."""

    def __init__(self, page: Page, server: DagsterDev, started: float) -> None:
        self.page, self.server, self.started = page, server, started

    def done(self, what: str) -> None:
        """Print the time since the test started (pytest shows it with -s, or on failure)."""
        print(f"{time.monotonic() - self.started:6.1f} s  {what}", flush=True)

    def start_actor_in_launchpad(self, actor: str, config: dict[str, str]) -> str:
        """Jobs > prepare_actor > Materialize all's menu > Open launchpad; add the partition, type
        the config, launch. Returns the launched run's id (from the run page it opens)."""
        page = self.page
        page.goto(f"{self.server.url}/jobs")
        # The Jobs list (Jobs page of the left navigation): one link per job.
        page.get_by_role("link", name="prepare_actor").click()
        # An asset job's page has no Launchpad tab: the split button "Materialize all…" of its
        # asset graph has a menu (its arrow_drop_down half) with "Open launchpad".
        materialize = page.get_by_role("button", name="Materialize all…")
        materialize.locator("xpath=ancestor::div[1]").get_by_role("button", name="arrow_drop_down").click()
        page.get_by_role("menuitem", name="Open launchpad").click()

        # The launchpad dialog, for the job's two assets.
        launchpad = page.get_by_role("dialog").filter(has_text="Launchpad (configure assets)")
        expect(launchpad.get_by_text("ASSETS (OPS)")).to_be_visible()
        # Its partition bar: "Add new partition" opens "Add a partition for actors".
        launchpad.get_by_role("button", name="Add new partition").click()
        add = page.get_by_role("dialog").filter(has_text="Add a partition for")
        add.get_by_placeholder("name").fill(actor)
        add.get_by_role("button", name="Save").click()
        expect(add).to_have_count(0)
        # The new partition is selected: the run's tags shown under the partition bar.
        expect(launchpad.get_by_text(f"partition: {actor}", exact=True)).to_be_visible()

        # The YAML editor is CodeMirror 5 (no ARIA role; its root has class "CodeMirror"): click
        # into it, select all, then insert the text as a paste would (typing key by key would
        # trigger its auto-indent and autocomplete).
        editor = launchpad.locator(".CodeMirror")
        editor.click()
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.insert_text(yaml.safe_dump({"ops": {"normalized_portrait": {"config": config}}}, sort_keys=False))
        expect(editor).to_contain_text(f"portrait: {config['portrait']}")
        # The editor's validation panel ("ERRORS").
        expect(launchpad.get_by_text("No errors")).to_be_visible()
        page.screenshot(path=ARTIFACTS / "e2e-start-1-launchpad.png")

        # The launchpad's "Materialize" button (its icon's name comes first in the accessible name).
        launchpad.get_by_role("button", name=re.compile(r"Materialize$")).click()
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
        # The run page's header: "Run of prepare_actor", its partition tag.
        expect(page.get_by_role("link", name="prepare_actor")).to_be_visible()
        expect(page.get_by_text(f"partition: {actor}", exact=True)).to_be_visible()
        page.screenshot(path=ARTIFACTS / "e2e-start-1-run.png")
        return page.url.rsplit("/", 1)[1]

    def leave_while_the_daemon_works(self) -> None:
        """Close the UI's page (as a user turns to other work): the run page's live log and the
        asset pages poll and re-render on every event, taking a CPU from the runs themselves."""
        self.page.goto("about:blank")

    def see_the_asset_graph(self, actors: int) -> None:
        """The training_set group's lineage (/asset-groups alone is the global lineage, which shows
        each group collapsed: training_set and inbox): its six assets and their partition counts."""
        page = self.page
        page.goto(f"{self.server.url}/locations/actor_pipeline/asset-groups/training_set")
        # Graph nodes, not the list beside the graph (CSS-module class of dagster-webserver 1.13).
        nodes = page.locator('[class*="AssetNode_assetName"]')
        for name in ASSETS:
            expect(nodes.filter(has_text=name).first).to_be_visible()
        assert sorted(text.strip() for text in nodes.all_inner_texts()) == sorted(ASSETS)
        # Statuses load after the graph: an image partition per actor and shot, one per actor for the rest.
        expect(page.get_by_text(f"{actors * SHOTS} partitions", exact=True)).to_be_visible()
        expect(page.get_by_text(f"{actors} partitions", exact=True)).to_have_count(len(ASSETS) - 1)

    def run(self, run_id: str) -> dict[str, Any]:
        """The run's job, config, tags and asset selection, as the webserver's GraphQL API has them."""
        query = """query ($id: ID!) { runOrError(runId: $id) { __typename ... on Run {
            jobName runConfigYaml tags { key value } assetSelection { path } } } }"""
        run = self.server.graphql(query, {"id": run_id})["runOrError"]
        assert run["__typename"] == "Run", run
        return {
            **run,
            "tags": {t["key"]: t["value"] for t in run["tags"]},
            "assets": ["/".join(a["path"]) for a in run["assetSelection"]],
        }

    def open_partition(self, asset: str, actor: str, shot: str | None = None) -> None:
        """The asset's Partitions tab, then the actor (and the shot) in its partition lists."""
        page = self.page
        page.goto(f"{self.server.url}/assets/{asset}?view=partitions")
        # The partitions view: a list per dimension ("Filter by actor…", "Filter by shot…").
        page.get_by_text(actor, exact=True).first.click()
        if shot:
            page.get_by_text(shot, exact=True).first.click()
        key = f"{actor}|{shot}" if shot else actor
        # The selected partition's panel, headed by its key.
        expect(page.get_by_text(key, exact=True).first).to_be_visible()

    def metadata_image(self, alt: str) -> Locator:
        """The ``<img>`` of the selected partition's ``thumbnail`` metadata (Markdown): the UI
        shows it inline when short, else behind a "[Show Markdown]" link that opens a dialog."""
        page = self.page
        # The panel's "Metadata" table: one row per entry, label cell then value cell.
        row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="thumbnail", exact=True))
        image, show = row.get_by_role("img", name=alt, exact=True), row.get_by_text("[Show Markdown]", exact=True)
        expect(image.or_(show)).to_be_visible()
        if show.is_visible():
            show.click()
            image = page.get_by_role("dialog").get_by_role("img", name=alt, exact=True)
        return image

    @staticmethod
    def expect_data_image(image: Locator) -> None:
        expect(image).to_be_visible()
        expect(image).to_have_attribute("src", re.compile(r"^data:image/(webp|png|jpeg);base64,"))
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "the browser did not decode it"

    def latest_event(self, partition: str) -> Locator:
        """The asset's Events tab, then the partition in its event list; returns the event panel."""
        page = self.page
        page.get_by_role("tab", name="Events").click()
        page.get_by_text(partition, exact=True).first.click()
        # The selected event's panel: "Partition <key> observed in run <id>", then "Metadata".
        return page.locator("div").filter(has=page.get_by_text("Metadata", exact=True)).filter(
            has=page.get_by_role("link", name=partition)
        ).last

    @staticmethod
    def metadata_value(panel: Locator, label: str) -> Locator:
        """The value cell of the metadata table's row ``label``."""
        row = panel.get_by_role("row").filter(has=panel.page.get_by_role("cell", name=label, exact=True))
        return row.get_by_role("cell").nth(1)

    def runs_list_row(self, job: str) -> Locator:
        """Runs (left navigation): the row of the one run of ``job``, with its tags."""
        page = self.page
        page.goto(f"{self.server.url}/runs")
        # The runs table is a virtualized grid of divs, no ARIA rows: a row is a RunsFeedRow
        # (CSS-module class of dagster-webserver 1.13), its job a link in the Target column.
        rows = page.locator('[class*="RunsFeedRow_rowGrid"]').filter(has=page.get_by_role("link", name=job))
        expect(rows).to_have_count(1)
        return rows

    def rerun_failed_and_missing_images(self, failed: int) -> None:
        """training_image > Partitions > Materialize… > every actor and shot, "only failed and
        missing" > Launch backfill, once the UI shows ``failed`` failed partitions."""
        page = self.page
        page.goto(f"{self.server.url}/assets/training_image?view=partitions")
        # The status filters above the partition lists.
        expect(page.get_by_text(f"Failed ({failed})", exact=True)).to_be_visible()
        page.get_by_role("button", name="Materialize…").click()
        # The dialog "Launch runs to materialize training_image": one selector per dimension,
        # each with an "All" button.
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("button", name="All", exact=True).nth(0).click()  # every actor
        dialog.get_by_role("button", name="All", exact=True).nth(1).click()  # every shot
        # Its Options section; once ticked, a callout says how many partitions will be made.
        dialog.get_by_text("Backfill only failed and missing partitions within selection").click()
        expect(dialog.get_by_role("checkbox", name=re.compile("Backfill only failed and missing"))).to_be_checked()
        expect(dialog.get_by_text(re.compile(f"Only {failed} failed and missing partition"))).to_be_visible()
        page.screenshot(path=ARTIFACTS / "e2e-start-4-rerun-dialog.png")
        # "Launch backfill" ("Launch 1 run" when a single partition is left).
        dialog.get_by_role("button", name=re.compile(r"^Launch (backfill|1 run)$")).click()
        expect(dialog).to_have_count(0)


def prediction_for(predictions: list[dict[str, Any]], words: str) -> dict[str, Any]:
    """The one emulated prediction whose prompt contains ``words``."""
    (found,) = [p for p in predictions if words in str(p["input"]["prompt"])]
    return found


def ended_backfill(server: DagsterDev) -> dict[str, Any] | None:
    """The one backfill, once it has ended (its status is no longer REQUESTED)."""
    query = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status numPartitions } } } }"
    (backfill,) = server.graphql(query)["partitionBackfillsOrError"]["results"]
    return backfill if backfill["status"] != "REQUESTED" else None


def explain_backfill(server: DagsterDev, backfill: dict[str, Any]) -> str:
    """The backfill's runs, with the first line of each step failure's error."""
    query = """query ($id: String!) {
        runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) { ... on Runs { results {
            runId jobName status tags { key value } } } } }"""
    lines = [f"backfill {backfill}:"]
    for run in server.graphql(query, {"id": backfill["id"]})["runsOrError"]["results"]:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        shots = f"{tags.get('dagster/asset_partition_range_start')}..{tags.get('dagster/asset_partition_range_end')}"
        lines.append(f"- run {run['runId'][:8]} ({run['jobName']}, {shots}): {run['status']}")
        lines += [f"    {error}" for error in step_errors(server, run["runId"])]
    return "\n".join(lines)


def step_errors(server: DagsterDev, run_id: str) -> list[str]:
    query = """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
        __typename ... on ExecutionStepFailureEvent { error { message cause { message } } } } } } }"""
    events = server.graphql(query, {"id": run_id})["logsForRun"]["events"]
    errors = [e["error"] for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
    return [((e.get("cause") or {}).get("message") or e["message"]).strip().splitlines()[0] for e in errors]
