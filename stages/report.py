"""Stage `report`: metrics, baselines, curves, predictions and the data funnel ->
`<out>/report.md` (+ `figures/*.png`) and a self-contained `<out>/report.html`.

Reads params `report.timelines` (how many windows to draw). Only `--metrics` is required; the
rest adds sections (a missing one is named in the report). No torch.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from repurpose.params import config_from_section, load_section
from repurpose.runner import Mapper

log = logging.getLogger(__name__)
SECTION = "report"


@dataclass(frozen=True)
class ReportConfig:
    """Params `report` (the default is params.yaml's: tests/test_config_defaults.py)."""

    timelines: int = 4  # windows drawn as ground truth vs prediction timelines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Inputs and output of the report stage."""
    parser.add_argument("--metrics", required=True, type=Path, help="evaluate's metrics JSON")
    parser.add_argument("--buckets", type=Path,
                        help="evaluate's per-window-length JSON (if not inside --metrics)")
    parser.add_argument("--baselines", type=Path, help="evaluate's baselines JSON")
    parser.add_argument("--curves", type=Path, help="training curves (models/curves.csv)")
    parser.add_argument("--model", type=Path, help="trained model folder (for model.json)")
    parser.add_argument("--predictions", type=Path, help="predictions JSONL (timelines)")
    parser.add_argument("--windows", type=Path,
                        help="windows table (timelines' ground truth, data funnel)")
    parser.add_argument("--split", default="test", help="split of the predictions")
    parser.add_argument("--features", type=Path, help="feature folder (data funnel)")
    parser.add_argument("--ledger", type=Path, help="download ledger (data funnel)")
    parser.add_argument("--out", required=True, type=Path, help="output folder (reports)")


def _optional(path: Path | None, what: str) -> Path | None:
    if path is None:
        return None
    if not path.exists():
        log.warning("%s %s not found: its section is left out", what, path)
        return None
    return path


def main(args: argparse.Namespace, mapper: Mapper | None = None) -> int:
    """Build and write the report."""
    del mapper
    from repurpose.report.build import (
        ReportInputs,
        build_document,
        read_curves,
        timeline_items,
        write_report,
    )
    from repurpose.splits.windows import read_windows

    count = config_from_section(ReportConfig, load_section(args.params, SECTION),
                                SECTION).timelines
    metrics = json.loads(args.metrics.read_text(encoding="utf-8"))
    buckets_path = _optional(args.buckets, "buckets")
    if buckets_path:
        metrics["buckets"] = json.loads(buckets_path.read_text(encoding="utf-8"))
    baselines_path = _optional(args.baselines, "baselines")
    curves_path = _optional(args.curves, "curves")
    model_json = _optional(args.model / "model.json", "model.json") if args.model else None
    predictions = _optional(args.predictions, "predictions")
    windows_path = _optional(args.windows, "windows table")
    windows = read_windows(windows_path) if windows_path else []
    timelines = None
    if predictions and windows:
        timelines = timeline_items(predictions, [w for w in windows if w.split == args.split],
                                   count)
    funnels = None
    if windows and args.features:
        from repurpose.training.index import index_features, plan_windows, usable_videos

        modalities = index_features(args.features)
        ok = usable_videos(args.ledger)
        funnels = {}
        for split in sorted({w.split for w in windows}):
            _, funnel = plan_windows([w for w in windows if w.split == split], split,
                                     modalities, ok)
            funnels[split] = funnel.to_dict()
    sources = {k: str(v) for k, v in (("metrics", args.metrics), ("baselines", baselines_path),
                                      ("curves", curves_path), ("predictions", predictions),
                                      ("windows", windows_path), ("features", args.features),
                                      ("ledger", args.ledger)) if v is not None}
    doc = build_document(ReportInputs(
        metrics=metrics,
        baselines=json.loads(baselines_path.read_text()) if baselines_path else None,
        curves=read_curves(curves_path) if curves_path else None,
        timelines=timelines, funnels=funnels,
        model_info=json.loads(model_json.read_text()) if model_json else None,
        sources=sources,
    ))
    out = write_report(doc, args.out)
    print(f"report: {len(doc.figures())} figures -> {out / 'report.md'}, {out / 'report.html'}")
    return 0
