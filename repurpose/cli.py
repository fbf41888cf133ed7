"""The `repurpose` command: one subcommand per pipeline stage, plus tools such as `validate`.

The CLI only parses paths and options. The stages are registered once in
`repurpose/stage_registry.py`; each lives in `stages/<name>.py` with `add_arguments(parser)`
and `main(args, mapper)`. When `orchestration.prefect` is on (or `auto` with a server) the
stage runs inside its Prefect flow (`flows/orchestrate.py`, built from the same registry),
otherwise directly. `flows/` never imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from repurpose.orchestration import (
    add_orchestration_arguments,
    orchestration_from,
    use_prefect,
)
from repurpose.stage_registry import STAGES as REGISTERED
from repurpose.stage_registry import exit_status, run_direct, setup_logging

# name -> (module, one-line help), in pipeline order: a view of `repurpose.stage_registry`
STAGES: dict[str, tuple[str, str]] = {s.name: (s.module, s.help) for s in REGISTERED}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="repurpose", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for stage in REGISTERED:
        sp = sub.add_parser(stage.name, help=stage.help, description=stage.help)
        stage.load().add_arguments(sp)
        add_orchestration_arguments(sp)
        sp.set_defaults(handler=_stage_handler(stage.name))
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
    """The argparse handler of stage `name`."""

    def handler(args: argparse.Namespace) -> int:
        """Run the stage with the parsed arguments."""
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
    return run_direct(name, args, orch)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `repurpose` console script."""
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    return exit_status(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
