"""`repurpose validate FILE...`: check split files and print their statistics."""

from __future__ import annotations

import argparse

from repurpose.errors import UserError
from repurpose.splits.schema import Problem, SplitValidationError, load_split
from repurpose.splits.summary import summarize

HELP = "validate Repurpose-10K split JSON files and print their statistics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `repurpose validate`."""
    parser.add_argument("files", nargs="+", metavar="FILE", help="split JSON files")


def main(args: argparse.Namespace) -> int:
    """Validate every file (all problems of all files are reported), then summarise."""
    parsed, problems = [], []
    for path in args.files:
        try:
            parsed.append(load_split(path))
        except SplitValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SplitValidationError(problems)
    for p in parsed:
        print(f"{p.path}: ok, {len(p.entries):,} windows ({len(p.duplicates)} duplicates)")
    if not any(p.entries for p in parsed):  # well-formed, but no window: as prepare, refuse
        raise UserError(f"{', '.join(str(p.path) for p in parsed)}: no windows in these split "
                        f"files, nothing to summarise")
    for line in summarize(parsed).lines():
        print(line)
    return 0


__all__ = ["HELP", "Problem", "add_arguments", "main"]
