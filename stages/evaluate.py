"""Stage `evaluate`: a predictions JSONL against a split JSON -> metrics (+ baselines).

Reads params `evaluate` (thresholds, length buckets, baseline seed and draws) and, for the
baselines' segment counts, `postprocess.per_minute` and `postprocess.min_segments`. Without
those sections (the evaluator used outside the pipeline) it falls back to the defaults and
says so. Writes `--out` (or prints) a JSON object with "precision", "recall", "f1" and "map",
each mapping "0.5" .. "0.9" and "avg" to a number, plus "counts" and "buckets" (the same
metrics per window-length bucket; or in `--buckets-out`); `--baselines-out` gets the random
and evenly spaced baselines evaluated the same way (headline metrics). No model, no torch.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from repurpose import io
from repurpose.evaluation.baselines import baseline_metrics
from repurpose.evaluation.config import SECTION, EvaluateConfig
from repurpose.evaluation.evaluator import evaluate as evaluate_windows
from repurpose.evaluation.evaluator import join, load_ground_truth, load_predictions
from repurpose.model.postprocess import PostprocessConfig
from repurpose.params import load_params, require
from repurpose.runner import Mapper

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Paths of the evaluate stage."""
    parser.add_argument("--gt", required=True, type=Path, help="split JSON (ground truth)")
    parser.add_argument("--pred", required=True, type=Path, help="predictions JSONL")
    parser.add_argument("--out", type=Path, help="metrics JSON to write (default: print it)")
    parser.add_argument("--buckets-out", type=Path,
                        help="write the per-window-length results here instead of into --out "
                             "(keeps `dvc metrics show` of --out narrow)")
    parser.add_argument("--baselines-out", type=Path,
                        help="also evaluate the random and evenly spaced baselines into this JSON")
    parser.add_argument("--baseline-lengths", type=Path,
                        help="split JSON whose clip lengths the baselines draw from "
                             "(default: the --gt split itself)")


def _configs(params_path: Path) -> tuple[EvaluateConfig, PostprocessConfig]:
    params = load_params(params_path)
    if isinstance(params.get(SECTION), dict):
        cfg = EvaluateConfig.from_section(params[SECTION])
    else:
        log.info("params %s: no '%s' section, using the default thresholds and buckets",
                 params_path, SECTION)
        cfg = EvaluateConfig()
    post = params.get("postprocess")
    if isinstance(post, dict):  # only the cap's two keys matter here (dvc.yaml lists them)
        post_cfg = PostprocessConfig(
            per_minute=float(require(post, "per_minute", (int, float), "postprocess")),
            min_segments=require(post, "min_segments", int, "postprocess"))
    else:
        post_cfg = PostprocessConfig()
    return cfg, post_cfg


def _headline(name: str, result: dict) -> str:
    return (f"  {name:<8} precision {result['precision']['avg']:.4f}  "
            f"recall {result['recall']['avg']:.4f}  f1 {result['f1']['avg']:.4f}  "
            f"map {result['map']['avg']:.4f}")


def main(args: argparse.Namespace, mapper: Mapper | None = None) -> int:
    """Evaluate, write the metrics (and baselines) atomically, print the averages."""
    del mapper  # no per-video work
    cfg, post = _configs(args.params)
    gt = load_ground_truth(args.gt)
    windows = join(gt, load_predictions(args.pred), str(args.pred))
    result = evaluate_windows(windows, cfg.thresholds, cfg.length_buckets)
    if args.buckets_out:
        io.write_json(args.buckets_out, result.pop("buckets"))
    if args.out:
        io.write_json(args.out, result)
    else:
        print(json.dumps(result, indent=2))
    counts = result["counts"]
    print(f"evaluate: {counts['windows']} windows ({counts['windows_with_predictions']} with "
          f"predictions, {gt.duplicates} duplicate entries ignored), "
          f"{counts['predictions']} predictions, {counts['clips']} clips")
    print(_headline("model", result))
    if args.baselines_out:
        pool = (load_ground_truth(args.baseline_lengths) if args.baseline_lengths else gt)
        base = baseline_metrics(windows, pool.clip_lengths(), per_minute=post.per_minute,
                                min_segments=post.min_segments, seed=cfg.baseline_seed,
                                draws=cfg.baseline_draws, thresholds=cfg.thresholds,
                                bucket_edges=cfg.length_buckets)
        base["settings"]["length_source"] = str(args.baseline_lengths or args.gt)
        for name in ("random", "even"):  # the report compares the headline numbers only
            base[name].pop("buckets", None)
        io.write_json(args.baselines_out, base)
        print(_headline("random", base["random"]))
        print(_headline("even", base["even"]))
    return 0
