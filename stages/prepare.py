"""Stage `prepare`: validate the chosen dataset's split JSON, write the windows and videos tables.

Reads params `prepare.dataset` (the name; dvc.yaml turns it into the input folder) and
`prepare.splits`. Writes `<out>/windows.parquet`, `<out>/videos.parquet`, `<out>/summary.json`:
all three are written into a hidden staging folder inside `<out>` and then renamed over their
namesakes; nothing else in `<out>` is touched. Nothing is written when any input is invalid, and
temporary files a killed run left behind are removed at the next start.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from repurpose import io
from repurpose.errors import UserError
from repurpose.params import ParamsError, config_from_section, load_section
from repurpose.runner import Mapper
from repurpose.splits.schema import ParsedSplit, SplitValidationError, load_split
from repurpose.splits.summary import summarize
from repurpose.splits.tables import write_videos_table
from repurpose.splits.windows import videos_needed, windows_table, write_windows

SECTION = "prepare"
OUTPUTS = ("windows.parquet", "videos.parquet", "summary.json")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Paths of the prepare stage."""
    parser.add_argument("--splits-dir", required=True, type=Path,
                        help="folder with <split>.json files")
    parser.add_argument("--out", required=True, type=Path, help="output folder (data/prepared)")


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Params `prepare`."""

    dataset: str  # split files to read: data/datasets/<dataset>/
    splits: tuple[str, ...]  # split names (<name>.json) to read

    @classmethod
    def from_section(cls, section: dict) -> PrepareConfig:
        """Strictly read params `prepare` (every key required, none unknown)."""
        cfg = config_from_section(cls, section, SECTION)
        names = cfg.splits
        if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ParamsError(
                f"params {SECTION}.splits: expected a non-empty list of names, got {list(names)!r}"
            )
        return cfg


def load_splits(splits_dir: Path, names: list[str]) -> list[ParsedSplit]:
    """Validate every split file; raise one error listing the problems of all files."""
    parsed, problems = [], []
    for name in names:
        try:
            parsed.append(load_split(splits_dir / f"{name}.json", split=name))
        except SplitValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SplitValidationError(problems)
    return parsed


def main(args: argparse.Namespace, mapper: Mapper | None = None) -> int:
    """Validate, then write the prepared tables atomically and print a summary."""
    del mapper  # no per-video work here
    cfg = PrepareConfig.from_section(load_section(args.params, SECTION))
    dataset = cfg.dataset
    parsed = load_splits(args.splits_dir, list(cfg.splits))
    entries = [e for p in parsed for e in p.unique_entries()]
    if not entries:  # valid files, but nothing to prepare (and nothing to summarise)
        raise UserError(f"{', '.join(str(p.path) for p in parsed)}: no windows in these split "
                        f"files, nothing to prepare")
    summary = summarize(parsed)
    videos = videos_needed(entries)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --out must be a folder, but it is a file")
    with io.folder_lock(out, "prepare"):
        # left by a killed run: the staging folder, and the sibling folders older versions used
        io.remove_stale_tmp(out, names=["staging", *OUTPUTS])
        io.remove_stale_tmp(out.parent, names=[out.name])
        with io.atomic_files(out) as tmp:
            write_windows(tmp / OUTPUTS[0], windows_table(entries))
            write_videos_table(tmp / OUTPUTS[1], videos)
            io.write_json(tmp / OUTPUTS[2], {
                "dataset": dataset,
                "splits": {p.split: len(p.unique_entries()) for p in parsed},
                "videos": len(videos),
                **dataclasses.asdict(summary),
            })
    print(f"prepare: dataset {dataset!r} -> {args.out}")
    for line in summary.lines():
        print(f"  {line}")
    print(f"  wrote {len(entries):,} windows and {len(videos):,} videos")
    return 0
