"""The pipeline's stages, registered once: name, module, help and the params keys each reads.

The CLI (`repurpose <stage>`) and the Prefect flows (`flows/orchestrate.py`) are both built
from `STAGES`; neither is imported here, so there is no import circle. A stage module
(`stages/<name>.py`) has `add_arguments(parser)` and `main(args, mapper)` and never imports
the CLI: `python -m stages.<name>` goes through `run_standalone` below.

`params` are the `params.yaml` keys the stage reads, the same as its `params:` in `dvc.yaml`
(a test checks); for a `foreach` stage (`extract`) the union over its instances. The
`orchestration` section is read by every stage's runner and is deliberately not among them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from repurpose.orchestration import Orchestration, add_orchestration_arguments
from repurpose.params import ParamsError

if TYPE_CHECKING:
    from repurpose.runner import Mapper


@dataclass(frozen=True)
class Stage:
    """One pipeline stage: its CLI name, its module, a one-line help and the params it reads."""

    name: str
    module: str
    help: str
    params: tuple[str, ...] = ()

    def load(self) -> ModuleType:
        """The stage module (`add_arguments`, `main`)."""
        return importlib.import_module(self.module)


# Pipeline order.
STAGES: tuple[Stage, ...] = (
    Stage("sample", "stages.sample",
          "synthesise the built-in sample dataset (videos + split JSON)", ("sample",)),
    Stage("prepare", "stages.prepare",
          "validate split JSON and write the windows and videos tables",
          ("prepare.dataset", "prepare.splits")),
    Stage("download", "stages.download",
          "fetch the needed time ranges of every video (yt-dlp)", ("download",)),
    Stage("transcribe", "stages.transcribe",
          "transcribe every downloaded video (segments, word times)", ("transcribe",)),
    Stage("extract", "stages.extract",
          "per-second visual or audio vectors into Parquet shards",
          ("extract.visual", "extract.audio")),
    Stage("embed_text", "stages.embed_text",
          "per-second text vectors of the transcripts into shards", ("embed_text",)),
    Stage("train", "stages.train",
          "train the clip model on the train split, best epoch on val",
          ("model", "train", "postprocess", "evaluate.thresholds")),
    Stage("predict", "stages.predict",
          "predict clips for every window of a split (JSONL)", ("postprocess",)),
    Stage("evaluate", "stages.evaluate",
          "score a predictions JSONL against a split JSON (+ baselines)",
          ("evaluate", "postprocess.per_minute", "postprocess.min_segments")),
    Stage("headline", "stages.headline",
          "the four metric averages DVC shows (metrics/headline.json)"),
    Stage("report", "stages.report",
          "write reports/report.md and a self-contained report.html", ("report.timelines",)),
)

BY_NAME: dict[str, Stage] = {s.name: s for s in STAGES}


def get_stage(name: str) -> Stage:
    """The registered stage `name`; KeyError naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r} (one of {', '.join(BY_NAME)})") from None


def direct_mapper(name: str, args: argparse.Namespace, orch: Orchestration) -> Mapper:
    """The mapper of stage `name` without Prefect (serial or threads), with progress."""
    from repurpose.progress import stage_desc, with_progress
    from repurpose.runner import local_mapper

    if orch.task_runner == "dask":
        raise ParamsError("orchestration.task_runner 'dask' needs orchestration.prefect: true")
    return with_progress(local_mapper(orch.task_runner, orch.workers), stage_desc(name, args))


def run_direct(name: str, args: argparse.Namespace, orch: Orchestration) -> int:
    """Run stage `name` in this process without Prefect."""
    return int(get_stage(name).load().main(args, mapper=direct_mapper(name, args, orch)))


def setup_logging(verbose: bool) -> None:
    """Log to stderr at INFO (DEBUG when `verbose`), HTTP client chatter at WARNING."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def exit_status(handler: Callable[[argparse.Namespace], int | None],
                args: argparse.Namespace) -> int:
    """Run `handler(args)`; a user error or a failing path the user named is one line, exit 2."""
    from repurpose.errors import UserError

    try:
        return int(handler(args) or 0)
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


def run_standalone(name: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                   main: Callable[..., int], argv: Sequence[str] | None = None) -> int:
    """`python -m stages.<name>`: the stage's own arguments, no Prefect, serial unless told."""
    from repurpose.orchestration import orchestration_from

    stage = get_stage(name)
    parser = argparse.ArgumentParser(prog=f"python -m {stage.module}", description=stage.help)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_arguments(parser)
    add_orchestration_arguments(parser, prefect=False)
    parser.set_defaults(task_runner="serial")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    def handler(ns: argparse.Namespace) -> int:
        """Run the stage directly with the mapper the arguments ask for."""
        return int(main(ns, mapper=direct_mapper(name, ns, orchestration_from(ns))))

    return exit_status(handler, args)
