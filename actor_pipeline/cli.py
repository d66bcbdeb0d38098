"""``actor-pipeline``: make a LoRA training set from one portrait, from the command line.

Progress goes to stderr; results go to stdout as JSON. Exit codes: 0 the set is complete (or the
LoRA trained); 1 it is not (failed shots, a LoRA bundle below its minimum, a failed training,
Replicate or storage that stopped answering, a full state disk; the JSON says which, and one line
on stderr); 2 bad input, usage, a refused token or training destination; 3 a state file of ours (a registration) is unreadable: the line names the file
and the fix; 75 another process is making the same actor; 130/143 stopped by SIGINT/SIGTERM.
After any of them, the same command continues where the last one stopped and pays for nothing
twice.
"""

import argparse
import errno
import hashlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from actor_pipeline.catalog.model import CATALOG_ENV_VAR, DEFAULT_CATALOG_PATH
from actor_pipeline.commands.progress import log_progress_to_stderr
from actor_pipeline.errors import (
    ActorBusy,
    InputError,
    Interrupted,
    NotMadeYet,
    PipelineError,
    StateError,
    StorageUnavailable,
    TrainingFailed,
    Unavailable,
)
from actor_pipeline.generation import stopping
from actor_pipeline.generation.types import ProviderDown, usd
from actor_pipeline.registry import ActorKind, NewActor

if TYPE_CHECKING:
    from actor_pipeline.defs.settings import PipelineSettings

EXIT_OK, EXIT_INCOMPLETE, EXIT_BAD_INPUT, EXIT_BAD_STATE, EXIT_BUSY = 0, 1, 2, 3, 75


# The flags `generate` takes for the actor, besides its id and portrait.
_ACTOR_FLAGS = ("user_id", "actor_type", "actor_sex", "reseed")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="actor-pipeline",
        description="Turn one portrait into a 16:9 LoRA training set (images, manifest, contact sheet).",
        epilog="Without REPLICATE_API_TOKEN the offline preview renderer is used ($0, not a generative model).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def run_options(sub: argparse.ArgumentParser, with_force: bool = True) -> None:
        sub.add_argument("--backend", choices=["auto", "preview", "replicate"], default="auto",
                         help="image generator; auto = replicate when REPLICATE_API_TOKEN is set, else preview (default: auto)")
        sub.add_argument("--storage", choices=["auto", "local", "s3"], default="auto",
                         help="where the set goes; auto = S3 when AWS_USER_FILES_BUCKET is set, else --out (default: auto)")
        sub.add_argument("--out", metavar="DIR",
                         help="local storage folder, and the Dagster instance when DAGSTER_HOME is unset "
                         "(default: $ACTOR_PIPELINE_OUTPUT_DIR, else output)")
        sub.add_argument("--debug-dir", metavar="DIR", help="also write the seed's debug files (images, payloads, grid) here")
        sub.add_argument(
            "--catalog", metavar="FILE",
            help="a TOML or YAML shot catalog to use instead of the default; unless it is the code location's "
            "($ACTOR_PIPELINE_CATALOG), its runs use a Dagster instance of their own (refused with $DAGSTER_HOME)",
        )
        sub.add_argument("--max-concurrency", type=int, metavar="N",
                         help="shots in flight at once (default: $ACTOR_PIPELINE_MAX_CONCURRENCY, else all of the actor's)")
        sub.add_argument("--shot-timeout", type=float, metavar="SECONDS",
                         help="one deadline per shot for create, polling, download and store "
                         "(default: $ACTOR_PIPELINE_SHOT_TIMEOUT_S, else 240); a rerun continues a shot that ran out")
        sub.add_argument("--trigger", default="TOK", metavar="WORD",
                         help="the LoRA bundle's trigger word, first in every caption (default: TOK)")
        sub.add_argument("--bundle-layout", choices=["flat", "kohya"], default="flat",
                         help="flat: NN.jpg + NN.txt (Replicate, ai-toolkit, fal); kohya: <repeats>_<trigger> <class>/ "
                         "(default: flat)")
        if with_force:
            sub.add_argument("--force", action="store_true", help="regenerate shots even when identical images exist")

    def spending_options(sub: argparse.ArgumentParser) -> None:
        # Each dest is the setting's field name (_settings).
        sub.add_argument("--regen-budget", type=float, metavar="PCT", dest="regen_budget_pct",
                         help="quality regenerations the set may pay for over all runs, in %% of its shots (rounded "
                         "down, at least 1 unless 0); failed images past it are kept, qc failed (default: 25, 4 of 17)")
        sub.add_argument("--systemic-pct", type=float, metavar="PCT", dest="systemic_pct",
                         help="a check failing on this %% of the shots at the first check is systemic (model, portrait "
                         "or catalog): nothing is regenerated for it, one line says what to look at (default: 50)")
        sub.add_argument("--max-cost-usd", type=float, metavar="USD",
                         help="the most this run may spend: no prediction is created past it, the shots not made stay "
                         "pending, and a rerun with a higher cap makes only them (default: no cap)")
        sub.add_argument("--min-images", type=int, metavar="N",
                         help="exit 1 when the LoRA bundle holds fewer usable images "
                         "(default: 10, or every shot of a smaller catalog)")
        sub.add_argument("--dry-run", action="store_true",
                         help="print what the run would create and pay at most (JSON), and create nothing")

    def training_options(sub: argparse.ArgumentParser, with_train: bool = True) -> None:
        if with_train:
            sub.add_argument("--train", action="store_true",
                             help="once the set is complete, also train its LoRA and measure its likeness (see `train`)")
        sub.add_argument("--retrain", action="store_true",
                         help="train again even if this bundle and config were trained already (pays again)")
        sub.add_argument("--no-validate", dest="validate", action="store_false",
                         help="skip the validation images and the likeness")
        sub.add_argument("--min-train-images", type=int, metavar="N",
                         help="refuse to train a bundle with fewer images (default: 10, the trainer's minimum)")
        sub.add_argument("--train-deadline", type=float, metavar="SECONDS",
                         help="cancel a training still running this long after its create (default: 3600)")
        sub.add_argument("--lora-owner", metavar="OWNER",
                         help="the destination model's owner (default: the API token's account)")
        if not with_train:  # generate's --max-cost-usd covers its --train too
            sub.add_argument("--max-cost-usd", type=float, metavar="USD",
                             help="the most a new training and its validation may cost: refused before anything is "
                             "paid when the worst case (the training deadline at the trainer's price per second, "
                             "and the validation images) is more (default: no cap)")

    def actor_options(sub: argparse.ArgumentParser, *names: str) -> None:
        """Flags for ``NewActor``'s fields ``names``, with its defaults and descriptions."""
        for name in names:
            field, flag = NewActor.model_fields[name], "--" + name.replace("_", "-")
            if field.annotation is bool:
                sub.add_argument(flag, action="store_true", help=field.description)
            else:
                shown = f" (default: {field.default})" if field.default is not None else ""
                sub.add_argument(flag, default=field.default, help=f"{field.description}{shown}")

    def read_options(sub: argparse.ArgumentParser, instead_of: str) -> None:
        """The options of a command that reads one actor's records."""
        sub.add_argument("--actor-id", required=True)
        sub.add_argument("--out", metavar="DIR", help="as for generate (default: $ACTOR_PIPELINE_OUTPUT_DIR, else output)")
        sub.add_argument("--storage", choices=["auto", "local", "s3"], default="auto")
        sub.add_argument("--catalog", metavar="FILE")
        sub.add_argument("--json", action="store_true", help=f"print JSON instead of {instead_of}")

    generate = commands.add_parser("generate", help="generate the training set for one portrait",
                                   description="Generate the training set for one portrait and print the result as JSON.")
    generate.add_argument("portrait", metavar="PORTRAIT", help="a file path, an http(s) URL or an s3:// URI")
    generate.add_argument("--actor-id", required=True, help=NewActor.model_fields["actor_id"].description)
    actor_options(generate, *_ACTOR_FLAGS)
    run_options(generate)
    spending_options(generate)
    training_options(generate)

    demo = commands.add_parser("demo", help="generate a set for the sample portrait shipped with the package",
                               description="Run `generate` on the bundled sample portrait (actor id 'demo').")
    run_options(demo)
    spending_options(demo)
    training_options(demo)

    retry = commands.add_parser(
        "retry-failed",
        help="generate the failed shots again (only those are paid for)",
        description="Rerun the failed shots of one actor (or of every actor the Dagster instance knows), "
        "then redraw the grid and rewrite the manifest. Exits 1 if shots are still failed afterwards.",
    )
    retry.add_argument("--actor-id", help="only this actor (default: every actor)")
    retry.add_argument("--max-attempts", type=int, default=3, metavar="N",
                       help="skip shots already attempted N times in all; an attempt counts once it created a "
                       "prediction, so outages never use them up (default: 3)")
    run_options(retry, with_force=False)

    status = commands.add_parser("status", help="per-shot status of an actor",
                                 description="Show each shot's status, attempts, cost and error for one actor. "
                                 "Exits 1 while the set is incomplete.")
    read_options(status, "a table")

    ledger = commands.add_parser(
        "ledger",
        help="an actor's cost ledger against Replicate's lists of predictions and trainings",
        description="Compare the actor's ledger (its shot records and training history) with what Replicate lists "
        "for the actor since its first registration (at most history_lookback_h back): predictions for its shots, "
        "its trainings and its LoRA's validation images; say where they differ, and what the actor cost in all on "
        "each side. "
        "Exits 1 when they differ and --reconcile was not given.",
    )
    read_options(ledger, "text")
    ledger.add_argument("--reconcile", action="store_true",
                        help="add what Replicate lists and the ledger lacks to the records, and rewrite the manifest")

    archive = commands.add_parser(
        "archive",
        help="remove old actors' partitions from Dagster, keeping their files",
        description="Archive actors: their partition leaves the Dagster instance (the actor list, asset pages and "
        "status queries stop paying for them); their files stay, and making an actor again brings it back.",
    )
    archive.add_argument("--actor-id", action="append", dest="actor_ids", metavar="ID", help="this actor (repeatable)")
    archive.add_argument("--older-than", type=float, metavar="DAYS", help="only actors last registered before")
    archive.add_argument("--dry-run", action="store_true", help="say which would be archived, archive nothing")
    archive.add_argument("--out", metavar="DIR", help="as for generate (default: $ACTOR_PIPELINE_OUTPUT_DIR, else output)")
    archive.add_argument("--storage", choices=["auto", "local", "s3"], default="auto")
    archive.add_argument("--catalog", metavar="FILE")

    train = commands.add_parser(
        "train",
        help="train an actor's LoRA on Replicate from its bundle, and measure its likeness",
        description="Train the actor's LoRA from its LoRA bundle (once per bundle and training config: asking again "
        "reuses it and pays nothing), then make a few images with it from held-out prompts and measure their "
        "identity distance to the portrait. A killed or stopped run is resumed by the same command without paying "
        "twice. Prints the result as JSON.",
    )
    train.add_argument("--actor-id", required=True)
    train.add_argument("--backend", choices=["auto", "preview", "replicate"], default="auto",
                       help="auto = replicate when REPLICATE_API_TOKEN is set, else the preview's $0 stand-in (default: auto)")
    train.add_argument("--out", metavar="DIR", help="as for generate (default: $ACTOR_PIPELINE_OUTPUT_DIR, else output)")
    train.add_argument("--storage", choices=["auto", "local", "s3"], default="auto")
    train.add_argument("--catalog", metavar="FILE")
    training_options(train, with_train=False)

    prompts = commands.add_parser("prompts", help="print the prompt set for an actor type",
                                  description="Print the catalog's prompts for an actor type and sex.")
    actor_options(prompts, *ActorKind.model_fields)
    prompts.add_argument("--catalog", metavar="FILE")
    prompts.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Dagster marks APIs this project relies on as beta; that is for its developers, not users.
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    args = _parser().parse_args(argv)
    # The catalog the code location loads (the shared instance's partitions are its shots), read
    # before --catalog replaces it for this process.
    args.shared_catalog = os.environ.get(CATALOG_ENV_VAR, "").strip() or str(DEFAULT_CATALOG_PATH)
    if args.catalog:
        # The catalog defines the partitions, so it must be chosen before Dagster code is imported.
        os.environ[CATALOG_ENV_VAR] = args.catalog
    log_progress_to_stderr()
    try:
        code = _stoppable(lambda: _COMMANDS[args.command](args))
    except InputError as exc:
        print(f"actor-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StateError as exc:
        print(f"actor-pipeline: unreadable state: {exc}", file=sys.stderr)
        return EXIT_BAD_STATE
    except ActorBusy as exc:
        print(f"actor-pipeline: busy: {exc}", file=sys.stderr)
        return EXIT_BUSY
    except StorageUnavailable as exc:
        return _ended_early(args, f"storage unavailable: {exc}")
    except TrainingFailed as exc:
        print(f"actor-pipeline: training failed: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except (Unavailable, ProviderDown) as exc:
        print(f"actor-pipeline: unavailable: {exc}", file=sys.stderr)
        return EXIT_INCOMPLETE
    except NotMadeYet as exc:
        return _ended_early(args, f"not made yet: {exc}")
    except Interrupted:
        code = EXIT_INCOMPLETE
    except Exception as exc:
        if (full := _disk_full(exc)) is None:
            raise
        state = _state_folder(args)
        return _ended_early(
            args,
            f"the state folder {state} has no space left ({full}): free space there, or point "
            "ACTOR_PIPELINE_STATE_DIR at a folder with room, then rerun the same command; nothing paid is lost",
        )
    if (signum := stopping.requested()) is not None:
        print(
            f"actor-pipeline: stopped by {signal.Signals(signum).name}: no new predictions were made; those already "
            "running were left to finish and the next run adopts them: rerun the same command to complete the set",
            file=sys.stderr,
        )
        return 128 + signum
    return code


def _ended_early(args: argparse.Namespace, problem: str) -> int:
    """The JSON result and one line of a command that could not finish: what the shot records
    (in storage) say, where they can be read."""
    from actor_pipeline.commands.status import actor_figures

    figures: dict[str, Any] = {"failed": None, "cost_usd": None}
    actor_id = getattr(args, "actor_id", None) or ("demo" if args.command == "demo" else None)
    if actor_id:
        try:
            figures = actor_figures(actor_id, _settings(args))
        except Exception as exc:  # the figures are a courtesy: the one line below is the message
            logging.getLogger(__name__).debug("no figures for the result: %s", exc)
    print(json.dumps({"complete": False, "error": problem, **figures}, indent=2))
    print(f"actor-pipeline: {problem}", file=sys.stderr)
    return EXIT_INCOMPLETE


def _disk_full(exc: BaseException) -> str | None:
    """What says the disk is full, anywhere in ``exc``'s chain: ENOSPC, or SQLite's own words
    (Dagster's instance database) for it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return current.strerror or "no space left on device"
        text = str(current).lower()
        if "sqlite" in type(current).__module__ + text and ("disk is full" in text or "disk i/o error" in text):
            return "the Dagster instance's database could not write"
        current = current.__cause__ or current.__context__
    return None


def _state_folder(args: argparse.Namespace) -> str:
    try:
        return os.path.abspath(_settings(args).storage.resolved_state_dir)
    except Exception:
        return "(the state folder)"


def _stoppable(command: Callable[[], int]) -> int:
    """Run ``command`` in a worker thread while this (main) thread turns SIGINT and SIGTERM into
    stop requests: Dagster's own interrupt handling runs only in the main thread, where it would
    delay or swallow them. A second signal exits at once (the journal is consistent anyway)."""
    if threading.current_thread() is not threading.main_thread():
        return command()
    stopping.reset()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["code"] = command()
        except BaseException as exc:  # re-raised in the main thread
            outcome["error"] = exc

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stopping.requested() is not None:
            print(f"actor-pipeline: stopped at once by a second {signal.Signals(signum).name}; rerun to resume", file=sys.stderr)
            os._exit(128 + signum)
        stopping.request(signum)

    previous = {signum: signal.signal(signum, on_signal) for signum in stopping.STOP_SIGNALS}
    worker = threading.Thread(target=work, name="actor-pipeline", daemon=True)
    try:
        worker.start()
        while worker.is_alive():
            worker.join(0.2)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if "error" in outcome:
        raise outcome["error"]
    return int(outcome["code"])


# The CLI's flag for each setting it can name in an error, by the setting's field name (or
# section.field where two sections share a name).
_FLAGS = {
    "training.min_images": "--min-train-images",
    "training.deadline_s": "--train-deadline",
    "max_concurrency": "--max-concurrency",
    "shot_timeout_s": "--shot-timeout",
    "regen_budget_pct": "--regen-budget",
    "systemic_pct": "--systemic-pct",
    "max_cost_usd": "--max-cost-usd",
    "min_images": "--min-images",
}


def _settings(args: argparse.Namespace, training_cap_usd: float | None = None) -> "PipelineSettings":
    """The environment's settings under the flags the command has and was given: ``--storage``,
    ``--out`` and the instance for ``--catalog`` always; the run and spending options where the
    command takes them (``--max-cost-usd`` caps the images and the LoRA, unless
    ``training_cap_usd`` says what is left for the LoRA). A value out of range is an
    ``InputError`` naming its flag."""
    from dataclasses import replace

    from actor_pipeline.defs.settings import PipelineSettings

    def given(**flags: str) -> dict[str, Any]:
        return {setting: getattr(args, flag, None) for setting, flag in flags.items()}

    settings = PipelineSettings.configure(
        generator=given(
            backend="backend",
            max_concurrency="max_concurrency",
            shot_timeout_s="shot_timeout",
            regen_budget_pct="regen_budget_pct",
            systemic_pct="systemic_pct",
            max_cost_usd="max_cost_usd",
        ),
        storage={"backend": args.storage, "local_dir": args.out},
        training={
            **given(min_images="min_train_images", deadline_s="train_deadline", owner="lora_owner", max_cost_usd="max_cost_usd"),
            **({"max_cost_usd": training_cap_usd} if training_cap_usd is not None else {}),
        },
        debug=given(directory="debug_dir"),
        bundle=given(trigger="trigger", layout="bundle_layout", min_images="min_images"),
        names=_FLAGS,
    )
    return replace(settings, instance_dir=_catalog_instance(args, settings.storage.resolved_state_dir))


def _catalog_instance(args: argparse.Namespace, state_dir: str) -> str | None:
    """The Dagster instance of a run with ``--catalog``: the shared one (``None``) when the file
    is the catalog the code location loads, else a folder of its own, since other shots are
    other partition keys, which must never enter an instance the UI shows."""
    digest = _digest(args.catalog) if args.catalog else None
    if digest is None or digest == _digest(args.shared_catalog):
        return None
    if os.environ.get("DAGSTER_HOME"):
        raise InputError(
            f"--catalog {args.catalog} has other shots than the catalog of the Dagster instance in $DAGSTER_HOME "
            f"({args.shared_catalog}), whose partitions they would change: unset DAGSTER_HOME to give this catalog "
            f"an instance of its own, or set {CATALOG_ENV_VAR}={args.catalog} for that instance's code location too"
        )
    return os.path.join(state_dir, f"dagster-catalog-{digest[:12]}")


def _digest(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return path  # unreadable: loading the catalog says why


def _generate(args: argparse.Namespace, portrait: str, actor_id: str, **extra: Any) -> int:
    from actor_pipeline.commands.generate import GenerationRequest, estimate, generate

    request = GenerationRequest(NewActor(actor_id=actor_id, portrait=portrait, **extra), force=args.force)
    settings = _settings(args)
    if args.dry_run:
        planned = estimate(request, settings)
        print(json.dumps(planned.as_dict(), indent=2))
        print(f"actor-pipeline: {planned.summary()}", file=sys.stderr)
        return EXIT_OK
    outcome = generate(request, settings)
    result = outcome.as_dict()
    if args.train and not result["failed"] and not outcome.shortfall():
        # What the set's images cost (over all its runs) leaves the rest of the cap for the LoRA.
        cap = args.max_cost_usd
        left = None if cap is None else round(max(0.0, cap - result["cost_usd"]), 6)
        try:
            result["lora"] = _train(args, actor_id, settings if left is None else _settings(args, left))
        except PipelineError:
            print(json.dumps(result, indent=2))  # the set is made whatever happens to its LoRA
            raise
    print(json.dumps(result, indent=2))
    if result["failed"]:
        _say_incomplete(actor_id, result["failed"], result["target_training_images"])
        return EXIT_INCOMPLETE
    if shortfall := outcome.shortfall():  # every shot made, too few of them usable
        print(f"actor-pipeline: {shortfall}", file=sys.stderr)
        return EXIT_INCOMPLETE
    return EXIT_OK


def _say_incomplete(actor_id: str, failed: list[dict[str, Any]], target: int) -> None:
    """One line for an incomplete set: the shared reason when there is one (an outage), else where to look."""
    reasons = {f["error"] for f in failed}
    why = reasons.pop() if len(reasons) == 1 else "see \"failed\" in the result"
    print(
        f"actor-pipeline: incomplete: {len(failed)} of {target} shot(s) not made ({why}); "
        f"`actor-pipeline retry-failed --actor-id {actor_id}` continues without paying twice",
        file=sys.stderr,
    )


def _cmd_generate(args: argparse.Namespace) -> int:
    return _generate(args, args.portrait, args.actor_id, **{name: getattr(args, name) for name in _ACTOR_FLAGS})


def _train(args: argparse.Namespace, actor_id: str, settings: "PipelineSettings") -> dict[str, Any]:
    from actor_pipeline.commands.train import train

    result = train(actor_id, settings, retrain=args.retrain, validate=args.validate)
    spent = result.cost_this_run_usd
    paid = ("reused, " if result.reused else "") + (f"{usd(spent)} this run" if spent else "nothing paid")
    likeness = f"; {result.likeness.summary()}" if result.likeness else ""
    print(f"actor-pipeline: LoRA {result.record.model_version} ({paid}){likeness}", file=sys.stderr)
    return result.as_dict()


def _cmd_train(args: argparse.Namespace) -> int:
    print(json.dumps(_train(args, args.actor_id, _settings(args)), indent=2))
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from actor_pipeline.samples import SAMPLE_PORTRAIT

    return _generate(args, str(SAMPLE_PORTRAIT), "demo", actor_sex=None)


def _cmd_retry_failed(args: argparse.Namespace) -> int:
    from actor_pipeline.commands.retry_failed import retry_failed

    if args.max_attempts < 1:
        raise InputError(f"--max-attempts must be at least 1, got {args.max_attempts}")
    retries = retry_failed(_settings(args), [args.actor_id] if args.actor_id else None, args.max_attempts)
    print(json.dumps([r.as_dict() for r in retries], indent=2))
    return EXIT_INCOMPLETE if any(r.still_failed for r in retries) else EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from actor_pipeline.commands.status import actor_status, format_status

    rows = actor_status(args.actor_id, _settings(args))
    print(json.dumps(rows, indent=2) if args.json else format_status(rows))
    return EXIT_OK if all(row["status"] == "succeeded" for row in rows) else EXIT_INCOMPLETE


def _cmd_ledger(args: argparse.Namespace) -> int:
    from actor_pipeline.commands.ledger import actor_ledger, format_ledger

    report = actor_ledger(args.actor_id, _settings(args), args.reconcile)
    # The hint repeats the options given: without --out it would look in another folder.
    given = {"--out": args.out, "--storage": None if args.storage == "auto" else args.storage, "--catalog": args.catalog}
    options = [part for flag, value in given.items() if value for part in (flag, value)]
    command = shlex.join(["actor-pipeline", "ledger", "--actor-id", args.actor_id, *options, "--reconcile"])
    print(json.dumps(report.as_dict(), indent=2) if args.json else format_ledger(report, command))
    return EXIT_INCOMPLETE if report.differs and not report.reconciled else EXIT_OK


def _cmd_prompts(args: argparse.Namespace) -> int:
    from actor_pipeline.catalog import build_prompt_set, get_actor_descriptor, load_catalog

    descriptor = get_actor_descriptor(args.actor_type, args.actor_sex)
    prompt_set = build_prompt_set(load_catalog(), "example", descriptor)
    if args.json:
        print(json.dumps([s.model_dump(mode="json", exclude={"seed"}) for s in prompt_set.shots], indent=2))
    else:
        for shot in prompt_set.shots:
            print(f"{shot.index:2d}. [{shot.category.value}] {shot.label} ({shot.shot_id})\n    {shot.prompt}\n")
    return EXIT_OK


def _cmd_archive(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from actor_pipeline.commands.archive import archive_actors

    rows = archive_actors(_settings(args), args.actor_ids, args.older_than, dry_run=args.dry_run)
    print(json.dumps([asdict(row) for row in rows], indent=2))
    return EXIT_OK


_COMMANDS = {
    "generate": _cmd_generate,
    "demo": _cmd_demo,
    "retry-failed": _cmd_retry_failed,
    "status": _cmd_status,
    "ledger": _cmd_ledger,
    "prompts": _cmd_prompts,
    "archive": _cmd_archive,
    "train": _cmd_train,
}


if __name__ == "__main__":
    sys.exit(main())
