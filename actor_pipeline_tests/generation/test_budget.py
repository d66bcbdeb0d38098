"""What a set may spend (issue 19), in the runner without Dagster: the set's regeneration budget,
checks failing on most of a set, a run's spending cap, and what a rerun would do first."""

import asyncio
import hashlib
import logging

import pytest

from actor_pipeline.generation.budget import QualityVerdict, Spending, load_verdict, regen_budget
from actor_pipeline.generation.journal import Step
from actor_pipeline.generation.runner import first_step, generate_shots
from actor_pipeline.generation.types import ShotStatus
from actor_pipeline.quality.model import CheckName
from actor_pipeline.storage.folder import FolderStorage
from actor_pipeline_tests.generation.test_runner import (
    CATALOG,
    LAYOUT,
    PORTRAIT,
    PROMPTS,
    PaidBackend,
    QualityFailing,
    batch,
    journal_step,
    load,
    run,
)


def make(storage: FolderStorage, backend: PaidBackend, **options: object) -> list:
    return asyncio.run(generate_shots(batch(PORTRAIT), backend, storage, **options))  # type: ignore[arg-type]


def verdict(storage: FolderStorage) -> QualityVerdict:
    found = load_verdict(storage, LAYOUT)
    assert found is not None
    return found


def test_the_budget_is_a_share_of_the_first_pass_rounded_down_but_at_least_one() -> None:
    assert [regen_budget(17, 25), regen_budget(100, 29), regen_budget(3, 25), regen_budget(3, 0)] == [4, 29, 1, 0]


def test_a_check_failing_on_half_the_set_or_more_regenerates_nothing_and_is_said_once(
    storage: FolderStorage, caplog: pytest.LogCaptureFixture
) -> None:
    failing = {shot_id: 99 for shot_id in CATALOG.ids[:9]}  # 9 of 17
    backend = PaidBackend()
    with caplog.at_level(logging.WARNING):
        make(storage, backend, quality=QualityFailing(dict(failing)))
    assert len(backend.created) == 17  # the first pass only
    found = verdict(storage)
    assert [(s.check, s.failed, s.shots) for s in found.systemic] == [(CheckName.MONOCHROME, 9, 17)]
    assert found.kept == {shot_id: "systemic" for shot_id in failing}
    said = [r.getMessage() for r in caplog.records if "failed on 9 of 17 shots" in r.getMessage()]
    assert len(said) == 1 and "monochrome" in said[0] and "check the model" in said[0]


def test_regenerations_stop_at_the_sets_budget_over_all_runs(storage: FolderStorage) -> None:
    failing = {shot_id: 99 for shot_id in CATALOG.ids[:6]}  # 6 of 17: under half, not systemic
    backend = PaidBackend()
    make(storage, backend, quality=QualityFailing(dict(failing)))
    assert len(backend.created) == 17 + 4  # 25 % of 17, rounded down
    assert [s for s in CATALOG.ids if backend.created.count(s) == 2] == CATALOG.ids[:4]  # in catalog order
    assert verdict(storage).kept == {shot_id: "budget" for shot_id in failing}
    record = load(storage, CATALOG.ids[5])
    assert record and record.qc == "failed" and record.made  # kept, visibly

    again = PaidBackend()  # the budget is the set's, not the run's
    make(storage, again, quality=QualityFailing(dict(failing)))
    assert again.created == []


def test_two_shots_failing_once_are_both_regenerated_within_the_budget(storage: FolderStorage) -> None:
    backend = PaidBackend()
    make(storage, backend, quality=QualityFailing({"pen_ink": 1, "woodcut": 1}))
    assert len(backend.created) == 19
    assert {load(storage, s).qc for s in ("pen_ink", "woodcut")} == {"regenerated"}  # type: ignore[union-attr]
    assert verdict(storage) == QualityVerdict(regen_budget=4)


def test_a_cap_stops_creates_and_a_rerun_with_a_higher_cap_pays_only_for_the_rest(storage: FolderStorage) -> None:
    first = PaidBackend()
    outcomes = make(storage, first, spending=Spending(0.30, 0.04))
    assert len(first.created) == 7  # $0.28; an eighth would pass $0.30
    pending = [o.record for o in outcomes if not o.succeeded]
    assert len(pending) == 10
    for record in pending:
        assert record.status is ShotStatus.PENDING and record.attempts == 0
        journaled = load(storage, record.shot_id)  # pending, saying why, for the manifest and status
        assert journaled and journaled.status is ShotStatus.PENDING and journaled.error == record.error
        assert "spending cap of $0.30" in (record.error or "")

    rest = PaidBackend()
    make(storage, rest, spending=Spending(1.00, 0.04))
    assert sorted(rest.created) == sorted(r.shot_id for r in pending)


def test_a_cap_keeps_a_failed_image_rather_than_regenerate_past_it(storage: FolderStorage) -> None:
    backend = PaidBackend()
    make(storage, backend, quality=QualityFailing({"gouache": 1}), spending=Spending(0.68, 0.04))
    assert len(backend.created) == 17
    gouache = load(storage, "gouache")
    assert gouache and gouache.qc == "failed" and gouache.regenerations == 0  # nothing spent on a create refused
    assert verdict(storage).kept == {"gouache": "cap"}


def test_an_adopted_prediction_is_not_charged_to_the_cap(storage: FolderStorage) -> None:
    journal_step(storage, "pen_ink", Step.CREATED, prediction_id="p-pen_ink")
    backend = PaidBackend()
    [outcome] = asyncio.run(
        generate_shots(batch(PORTRAIT, ["pen_ink"]), backend, storage, spending=Spending(0.0, 0.04))
    )
    assert outcome.succeeded and backend.created == []


def test_first_step_says_what_the_next_run_does_with_each_shot(storage: FolderStorage) -> None:
    run(storage, PaidBackend())
    backend, portrait = PaidBackend(), hashlib.sha256(PORTRAIT).hexdigest()
    gouache = PROMPTS.shot("gouache")
    assert {first_step(s, load(storage, s.shot_id), storage, portrait, backend) for s in PROMPTS.shots} == {"reused"}
    assert first_step(gouache, load(storage, "gouache"), storage, "another portrait", backend) == "create"
    assert first_step(gouache, load(storage, "gouache"), storage, portrait, backend, force=True) == "create"
    assert first_step(gouache, None, storage, portrait, backend) == "create"
    journal_step(storage, "pen_ink", Step.CREATED, prediction_id="p-pen_ink")  # adopted at no cost
    journal_step(storage, "woodcut", Step.PLANNED)  # looked up, then created if not found
    steps = {s: first_step(PROMPTS.shot(s), load(storage, s), storage, portrait, backend) for s in ("pen_ink", "woodcut")}
    assert steps == {"pen_ink": "resumed", "woodcut": "create"}
