"""The `repurpose` command: one subcommand per pipeline stage, plus tools such as `validate`.

The CLI only parses paths and options. Each stage lives in `stages/<name>.py` with
`add_arguments(parser)` and `main(args, mapper)`; when `orchestration.prefect` is on (the
default) the stage runs inside its Prefect flow from `flows/`, otherwise directly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from repurpose.params import DEFAULT_PARAMS, ParamsError, load_params

# name -> (module, one-line help). Order is pipeline order.
STAGES: dict[str, tuple[str, str]] = {
    "sample": ("stages.sample", "synthesise the built-in sample dataset (videos + split JSON)"),
    "prepare": ("stages.prepare", "validate split JSON and write the windows and videos tables"),
    "download": ("stages.download", "fetch the needed time ranges of every video (yt-dlp)"),
    "transcribe": ("stages.transcribe", "transcribe every downloaded video (segments, word times)"),
    "extract": ("stages.extract", "per-second visual or audio vectors into Parquet shards"),
    "embed_text": ("stages.embed_text", "per-second text vectors of the transcripts into shards"),
    "train": ("stages.train", "train the clip model on the train split, best epoch on val"),
    "predict": ("stages.predict", "predict clips for every window of a split (JSONL)"),
    "evaluate": ("stages.evaluate", "score a predictions JSONL against a split JSON (+ baselines)"),
    "headline": ("stages.headline", "the four metric averages DVC shows (metrics/headline.json)"),
    "report": ("stages.report", "write reports/report.md and a self-contained report.html"),
}

TASK_RUNNERS = ("serial", "threads", "dask")


@dataclass(frozen=True)
class Orchestration:
    """How a stage is run: inside Prefect or not, and how per-video work is mapped."""

    prefect: bool | str = "auto"  # True | False | "auto" (Prefect when an API is configured)
    task_runner: str = "threads"
    workers: int = 2
    retries: int = 1
    dask_address: str | None = None


def orchestration_from(args: argparse.Namespace) -> Orchestration:
    """Read the `orchestration` params section, then apply CLI overrides."""
    section = load_params(args.params).get("orchestration", {}) or {}
    orch = Orchestration(
        prefect=section.get("prefect", "auto"),
        task_runner=str(section.get("task_runner", "threads")),
        workers=int(section.get("workers", 2)),
        retries=int(section.get("retries", 1)),
        dask_address=section.get("dask_address"),
    )
    overrides = {
        "prefect": args.prefect,
        "task_runner": args.task_runner,
        "workers": args.workers,
        "dask_address": args.dask_address,
    }
    values = {**orch.__dict__, **{k: v for k, v in overrides.items() if v is not None}}
    result = Orchestration(**values)
    if result.prefect not in (True, False, "auto"):
        raise ParamsError(
            f"orchestration.prefect: expected true, false or auto, got {result.prefect!r}"
        )
    if result.task_runner not in TASK_RUNNERS:
        raise ParamsError(
            f"orchestration.task_runner: unknown {result.task_runner!r} "
            f"(choose one of {', '.join(TASK_RUNNERS)})"
        )
    return result


def prefect_api_configured() -> bool:
    """True if a Prefect API URL is set (environment or active profile): a server is in use."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml"))
    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return bool(data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


def use_prefect(orch: Orchestration) -> bool:
    """Whether a stage runs inside its Prefect flow.

    "auto" uses Prefect when an API server is configured: each stage then costs ~3 s of
    Prefect overhead; without a server Prefect would start a temporary one per stage (~15 s),
    so "auto" runs the same stage code directly instead.
    """
    if orch.prefect == "auto":
        return prefect_api_configured()
    return bool(orch.prefect)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params", default=DEFAULT_PARAMS, help="params file (default: %(default)s)"
    )
    group = parser.add_argument_group("orchestration (overrides params.yaml 'orchestration')")
    group.add_argument(
        "--prefect", action=argparse.BooleanOptionalAction, default=None,
        help="run inside a Prefect flow (default from params: auto = when a server is set)",
    )
    group.add_argument("--task-runner", choices=TASK_RUNNERS, default=None)
    group.add_argument("--workers", type=int, default=None)
    group.add_argument("--dask-address", default=None,
                       help="address of a running Dask scheduler (with --task-runner dask)")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="repurpose", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in STAGES.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module_name).add_arguments(sp)
        _add_common(sp)
        sp.set_defaults(handler=_stage_handler(name))
    from repurpose.splits import cli as splits_cli

    vp = sub.add_parser("validate", help=splits_cli.HELP, description=splits_cli.HELP)
    splits_cli.add_arguments(vp)
    vp.set_defaults(handler=splits_cli.main)
    from repurpose.features import npy as features_cli

    fp = sub.add_parser("features", help=features_cli.HELP, description=features_cli.HELP)
    features_cli.add_arguments(fp)
    fp.set_defaults(handler=features_cli.main)
    from repurpose.clip import cli as clip_cli

    cp = sub.add_parser("clip", help=clip_cli.HELP, description=clip_cli.DESCRIPTION)
    clip_cli.add_arguments(cp)
    cp.set_defaults(handler=clip_cli.main)
    return parser


def _stage_handler(name: str):  # noqa: ANN202
    def handler(args: argparse.Namespace) -> int:
        return run_stage(name, args)

    return handler


def run_stage(name: str, args: argparse.Namespace) -> int:
    """Run stage `name` with parsed `args`, in its Prefect flow or directly."""
    orch = orchestration_from(args)
    if use_prefect(orch):
        # library and stage logs (not only prints) reach the Prefect UI
        os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "repurpose,stages")
        from flows.orchestrate import run_stage_flow

        return run_stage_flow(name, args, orch)
    from repurpose.runner import local_mapper

    if orch.task_runner == "dask":
        raise ParamsError("orchestration.task_runner 'dask' needs orchestration.prefect: true")
    from repurpose.progress import stage_desc, with_progress

    module = importlib.import_module(STAGES[name][0])
    mapper = with_progress(local_mapper(orch.task_runner, orch.workers), stage_desc(name, args))
    return int(module.main(args, mapper=mapper))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `repurpose` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from repurpose.errors import UserError

    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:  # not about a file the user named: a bug, show it all
            raise
        # a folder that is read-only, a full disk, a path that is a file: one line, exit 2
        print(f"error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; finished work is kept, run it again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
