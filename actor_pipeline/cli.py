"""``actor-pipeline``: make a LoRA training set from one portrait, from the command line.

Progress goes to stderr; results go to stdout as JSON. Exit codes: 0 every shot made, 1 some
shots failed (the JSON still lists them), 2 bad input or usage.
"""

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from actor_pipeline.catalog.descriptors import ACTOR_SEXES, ACTOR_TYPES
from actor_pipeline.errors import InputError

if TYPE_CHECKING:
    from actor_pipeline.defs.resources import PipelineSettings

EXIT_OK, EXIT_SHOTS_FAILED, EXIT_BAD_INPUT = 0, 1, 2


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
        sub.add_argument("--out", default=os.environ.get("ACTOR_PIPELINE_OUTPUT_DIR", "output"), metavar="DIR",
                         help="local storage folder, and the Dagster instance when DAGSTER_HOME is unset (default: output)")
        sub.add_argument("--debug-dir", metavar="DIR", help="also write the seed's debug files (images, payloads, grid) here")
        sub.add_argument("--catalog", metavar="FILE", help="a TOML or YAML shot catalog to use instead of the default")
        sub.add_argument("--max-concurrency", type=int, default=8, metavar="N", help="shots in flight at once (default: 8)")
        if with_force:
            sub.add_argument("--force", action="store_true", help="regenerate shots even when identical images exist")

    generate = commands.add_parser("generate", help="generate the training set for one portrait",
                                   description="Generate the training set for one portrait and print the result as JSON.")
    generate.add_argument("portrait", metavar="PORTRAIT", help="a file path, an http(s) URL or an s3:// URI")
    generate.add_argument("--actor-id", required=True, help="1-64 characters from A-Z a-z 0-9 _ -")
    generate.add_argument("--user-id", default="default", help="owner of the actor; first folder of the storage keys (default: default)")
    generate.add_argument("--actor-type", default="human", help=f"one of {', '.join(ACTOR_TYPES)} (default: human)")
    generate.add_argument("--actor-sex", help=f"for humans: {' or '.join(ACTOR_SEXES)}; unset means 'person'")
    generate.add_argument("--reseed", action="store_true", help="new seeds for every shot: new variants of the images")
    run_options(generate)

    demo = commands.add_parser("demo", help="generate a set for the sample portrait shipped with the package",
                               description="Run `generate` on the bundled sample portrait (actor id 'demo').")
    run_options(demo)

    retry = commands.add_parser(
        "retry-failed",
        help="generate the failed shots again (only those are paid for)",
        description="Rerun the failed shots of one actor (or of every actor the Dagster instance knows), "
        "then redraw the grid and rewrite the manifest. Exits 1 if shots are still failed afterwards.",
    )
    retry.add_argument("--actor-id", help="only this actor (default: every actor)")
    retry.add_argument("--max-attempts", type=int, default=3, metavar="N",
                       help="skip shots already attempted N times in all (default: 3)")
    run_options(retry, with_force=False)

    status = commands.add_parser("status", help="per-shot status of an actor",
                                 description="Show each shot's status, attempts, cost and error for one actor.")
    status.add_argument("--actor-id", required=True)
    status.add_argument("--out", default=os.environ.get("ACTOR_PIPELINE_OUTPUT_DIR", "output"), metavar="DIR")
    status.add_argument("--storage", choices=["auto", "local", "s3"], default="auto")
    status.add_argument("--catalog", metavar="FILE")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")

    prompts = commands.add_parser("prompts", help="print the prompt set for an actor type",
                                  description="Print the catalog's prompts for an actor type and sex.")
    prompts.add_argument("--actor-type", default="human", help=f"one of {', '.join(ACTOR_TYPES)} (default: human)")
    prompts.add_argument("--actor-sex", help=f"for humans: {' or '.join(ACTOR_SEXES)}")
    prompts.add_argument("--catalog", metavar="FILE")
    prompts.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.catalog:
        # The catalog defines the partitions, so it must be chosen before Dagster code is imported.
        os.environ["ACTOR_PIPELINE_CATALOG"] = args.catalog
    _log_progress_to_stderr()
    try:
        return _COMMANDS[args.command](args)
    except InputError as exc:
        print(f"actor-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("actor-pipeline: interrupted", file=sys.stderr)
        return 130


class _ProgressHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def _log_progress_to_stderr() -> None:
    package_logger = logging.getLogger("actor_pipeline")
    if not any(isinstance(h, _ProgressHandler) for h in package_logger.handlers):
        handler = _ProgressHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)


def _settings(args: argparse.Namespace) -> "PipelineSettings":
    from actor_pipeline.defs.resources import PipelineSettings

    return PipelineSettings(
        backend=args.backend,
        storage=args.storage,
        output_dir=args.out,
        debug_dir=args.debug_dir,
        max_concurrency=args.max_concurrency,
    )


def _generate(args: argparse.Namespace, portrait: str, actor_id: str, **extra: Any) -> int:
    from actor_pipeline.orchestrate import GenerationRequest, generate

    request = GenerationRequest(actor_id=actor_id, portrait_source=portrait, force=args.force, **extra)
    result = generate(request, _settings(args)).as_dict()
    print(json.dumps(result, indent=2))
    return EXIT_SHOTS_FAILED if result["failed"] else EXIT_OK


def _cmd_generate(args: argparse.Namespace) -> int:
    return _generate(
        args,
        args.portrait,
        args.actor_id,
        user_id=args.user_id,
        actor_type=args.actor_type,
        actor_sex=args.actor_sex,
        reseed=args.reseed,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from actor_pipeline.samples import SAMPLE_PORTRAIT

    return _generate(args, str(SAMPLE_PORTRAIT), "demo", actor_sex=None)


def _cmd_retry_failed(args: argparse.Namespace) -> int:
    from actor_pipeline.rerun import retry_failed

    if args.max_attempts < 1:
        raise InputError(f"--max-attempts must be at least 1, got {args.max_attempts}")
    retries = retry_failed(_settings(args), [args.actor_id] if args.actor_id else None, args.max_attempts)
    print(json.dumps([r.as_dict() for r in retries], indent=2))
    return EXIT_SHOTS_FAILED if any(r.still_failed for r in retries) else EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    from actor_pipeline.status import actor_status, format_status

    rows = actor_status(args.actor_id, storage_backend=args.storage, output_dir=args.out)
    print(json.dumps(rows, indent=2) if args.json else format_status(rows))
    return EXIT_OK


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


_COMMANDS = {
    "generate": _cmd_generate,
    "demo": _cmd_demo,
    "retry-failed": _cmd_retry_failed,
    "status": _cmd_status,
    "prompts": _cmd_prompts,
}


if __name__ == "__main__":
    sys.exit(main())
