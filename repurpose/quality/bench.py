"""The model-quality benchmark: every arch, the same budget, the same planted held-out windows.

For one difficulty level: write a planted set (`planted`), train each arch on its train split
(best epoch on val), predict the test split through the one inference path, decode with every
decoder, and score under the reference protocol (and the uncapped one). Beside them, from the
same run: random and evenly spaced segments (the evaluator's baselines) and the ground-truth
clips passed through the same per-minute cap (the protocol's ceiling). Per-second AUC of each
model on the test seconds shows where a failure sits (scores or boundaries).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from repurpose.evaluation.baselines import even_predictions, random_predictions
from repurpose.evaluation.metrics import THRESHOLDS, WindowResult, evaluate_windows
from repurpose.inference import decode_outputs, predict_plans
from repurpose.model.config import REFERENCE_HEAD
from repurpose.model.decoders import DECODERS
from repurpose.model.postprocess import PostprocessConfig, segment_cap
from repurpose.model.registry import ARCHS, ModelSpec, arch_spec
from repurpose.quality.planted import Difficulty, PlantedSet, PlantedSpec, make_planted
from repurpose.training.config import TrainConfig
from repurpose.training.index import index_features, load_plans
from repurpose.training.train import load_model, train_model

log = logging.getLogger(__name__)
HEADLINE = ("precision", "recall", "f1", "map")


@dataclass(frozen=True)
class Budget:
    """What every arch gets: epochs, width, optimiser settings."""

    epochs: int = 10
    d_model: int = 128
    batch_size: int = 1
    lr: float = 2e-3
    warmup_epochs: int = 1
    seed: int = 0
    select_decoder: str = "runs"  # decoder of the val metric that picks the best epoch
    smooth: int = 5  # runs/hybrid: moving-average width over per-second scores
    gap: int = 0  # runs/hybrid: runs at most this many seconds apart merge
    overrides: dict = dataclasses.field(default_factory=dict)  # arch -> {config key: value}


def bench_specs(budget: Budget) -> dict[str, ModelSpec]:
    """The arch configs of the benchmark: mmct at d_model (1 layer of each kind), tal at
    d_model, linear as is; `mmct-reference`: mmct with the reference's regression head (raw
    seconds through a ReLU, no quality ranking), to measure the root cause."""
    d = budget.d_model
    out = {}
    for key in ARCHS:
        cls = arch_spec(key).config_class()
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {}
        if "d_model" in fields:
            values["d_model"] = d
        if key == "mmct":
            values.update(n_heads=4, ffn_dim=2 * d, proj_hidden=2 * d, self_layers=1,
                          caption_layers=1, cross_layers=1, head_hidden=d // 2)
        if key == "tal":
            values.update({k: v for k, v in {"ffn_dim": 2 * d}.items() if k in fields})
        values.update(budget.overrides.get(key, {}))
        out[key] = ModelSpec(key, cls(**values))
    out["mmct-reference"] = ModelSpec("mmct", dataclasses.replace(out["mmct"].config,
                                                                  **REFERENCE_HEAD))
    return out


def train_config(budget: Budget) -> TrainConfig:
    """The shared training settings."""
    return TrainConfig(seed=budget.seed, epochs=budget.epochs, warmup_epochs=budget.warmup_epochs,
                       batch_size=budget.batch_size, lr=budget.lr, grad_clip=1.0, patience=0,
                       select_metric="map", device="cpu", num_workers=0)


def reference_protocol(decoder: str = "regression", cap: bool = True, smooth: int = 1,
                       gap: int = 0) -> PostprocessConfig:
    """The reference protocol (threshold 0.5, 10-90 s, Soft-NMS, per-minute cap) with a decoder."""
    return PostprocessConfig(decoder=decoder, cap=cap, smooth=smooth, gap=gap)


def per_second_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC by ranks (ties averaged); nan when one class is absent."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _summary(metrics: dict) -> dict[str, float]:
    return {m: float(metrics[m]["avg"]) for m in HEADLINE}


def oracle_windows(windows: Sequence[WindowResult], post: PostprocessConfig
                   ) -> list[WindowResult]:
    """Ground-truth clips through the per-minute cap (the first `cap` clips, score 1)."""
    out = []
    for w in windows:
        k = segment_cap(w.duration, post.per_minute, post.min_segments) if post.cap else len(w.gt)
        gt = w.gt[:k]
        out.append(WindowResult(w.key, w.duration, np.c_[gt, np.ones(len(gt))], w.gt))
    return out


def baseline_rows(gt: Sequence[WindowResult], train_lengths: np.ndarray, cap: bool,
                  seed: int) -> list[dict]:
    """Random (mean of 5 draws), evenly spaced, and capped-oracle rows."""
    post = reference_protocol(cap=cap)
    per_minute = post.per_minute if cap else 1.0
    rng = np.random.default_rng(seed)
    draws = [evaluate_windows(random_predictions(gt, train_lengths, per_minute, 1, rng))
             for _ in range(5)]
    random_row = {m: float(np.mean([d[m]["avg"] for d in draws])) for m in HEADLINE}
    even = evaluate_windows(even_predictions(gt, float(np.median(train_lengths)), per_minute, 1))
    oracle = evaluate_windows(oracle_windows(gt, post))
    return [{"system": "random", **random_row}, {"system": "evenly spaced", **_summary(even)},
            {"system": "ground truth through the cap" if cap else "ground truth",
             **_summary(oracle)}]


def run_arch(planted: PlantedSet, spec: ModelSpec, budget: Budget, out: Path) -> dict:
    """Train one arch; return its outputs on the test split and timings."""
    began = time.perf_counter()
    result = train_model(spec, train_config(budget),
                         reference_protocol(budget.select_decoder, smooth=budget.smooth,
                                            gap=budget.gap),
                         THRESHOLDS,
                         planted.windows, planted.features, planted.ledger, out, resume=False)
    train_s = time.perf_counter() - began
    net, _ = load_model(out, "cpu")
    plans, _ = load_plans(planted.windows, "test", index_features(planted.features), None)
    _, outputs = predict_plans(net, plans, str(planted.features), torch.device("cpu"),
                               reference_protocol(), batch_size=budget.batch_size)
    labels = np.concatenate([p.window.labels[: p.rows] for p in plans])
    scores = np.concatenate([outputs[i].scores for i in range(len(plans))])
    return {"plans": plans, "outputs": outputs, "train_s": train_s, "auc":
            per_second_auc(labels, scores), "best_epoch": result.best.get("epoch"),
            "n_parameters": result.n_parameters, **regression_diagnostics(plans, outputs)}


def regression_diagnostics(plans: Sequence, outputs: dict) -> dict[str, float]:
    """Where boundaries fail, per second inside clips: mean IoU of the second's regressed
    segment with its clip, share of regressed distances exactly 0 (a dead ReLU), share of
    regressed segments inside the protocol's 10-90 s, and share of clip seconds whose score
    ties the window's best (saturated ranking)."""
    ious, zero, in_range, tied = [], [], [], []
    for i, p in enumerate(plans):
        out, t = outputs[i], np.asarray(p.window.targets[: p.rows], dtype=np.float64)
        pos = t.sum(1) > 0
        if not pos.any():
            continue
        pred = np.asarray(out.offsets, dtype=np.float64)[pos]
        inter = np.minimum(pred, t[pos]).sum(1)
        ious.append(inter / (pred.sum(1) + t[pos].sum(1) - inter + 1e-9))
        zero.append((pred == 0).mean(1))
        length = pred.sum(1)
        in_range.append((length >= 10) & (length <= 90))
        tied.append(out.scores[pos] >= out.scores.max() - 1e-4)
    cat = np.concatenate
    return {"reg_iou": float(cat(ious).mean()), "reg_zero": float(cat(zero).mean()),
            "reg_in_range": float(cat(in_range).mean()), "score_ties": float(cat(tied).mean())}


# The runs decoder as it was before `gap` (smooth 5, no gap closing), decoded from the same
# trained model beside the chosen settings so the decoder's share of a change is visible.
PLAIN_RUNS = {"smooth": 5, "gap": 0}


def arch_rows(name: str, run: dict, cap: bool, smooth: int, gap: int = 0) -> list[dict]:
    """One row per decoder for a trained arch (plus plain runs when smooth/gap differ)."""
    variants = [(d, d, smooth if d != "regression" else 1, gap if d != "regression" else 0)
                for d in DECODERS]
    if (smooth, gap) != (PLAIN_RUNS["smooth"], PLAIN_RUNS["gap"]):
        variants.append(("runs", f"runs (smooth {PLAIN_RUNS['smooth']}, gap 0)",
                         PLAIN_RUNS["smooth"], 0))
    rows = []
    for decoder, label, width, closing in variants:
        post = reference_protocol(decoder, cap, width, closing)
        segments = decode_outputs(run["plans"], run["outputs"], post)
        windows = [WindowResult(p.window.window_id, p.window.duration,
                                segments[p.window.window_id], np.asarray(p.window.clips))
                   for p in run["plans"]]
        rows.append({"system": f"{name} + {label}", **_summary(evaluate_windows(windows)),
                     "auc": run["auc"], "train_s": run["train_s"],
                     **{k: run[k] for k in ("reg_iou", "reg_zero", "reg_in_range",
                                            "score_ties")},
                     "best_epoch": run["best_epoch"], "params": run["n_parameters"]})
    return rows


def run_level(root: Path, level: Difficulty | str, archs: Sequence[str], budget: Budget,
              spec: PlantedSpec | None = None) -> dict[str, list[dict]]:
    """All rows of one level: {"capped": [...], "uncapped": [...]}."""
    planted = make_planted(root / "data", level, spec)
    specs = bench_specs(budget)
    unknown = sorted(set(archs) - set(specs))
    if unknown:
        raise ValueError(f"unknown arch(s) {', '.join(unknown)}; choose from {', '.join(specs)}")
    runs = {a: run_arch(planted, specs[a], budget, root / "models" / a) for a in archs}
    any_run = next(iter(runs.values()))
    gt = [WindowResult(p.window.window_id, p.window.duration, np.zeros((0, 3)),
                       np.asarray(p.window.clips)) for p in any_run["plans"]]
    train_plans, _ = load_plans(planted.windows, "train", index_features(planted.features), None)
    lengths = np.array([b - a for p in train_plans for a, b in p.window.clips])
    table = {}
    for name, cap in (("capped", True), ("uncapped", False)):
        rows = [r for a in archs for r in arch_rows(a, runs[a], cap, budget.smooth, budget.gap)]
        table[name] = rows + baseline_rows(gt, lengths, cap, budget.seed)
    return table


def format_table(rows: list[dict]) -> str:
    """A Markdown table of rows."""
    head = ("| system | per-second AUC | precision | recall | F1 | mAP | regressed IoU | "
            "train s | best epoch |")
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        auc = f"{r['auc']:.3f}" if "auc" in r else "-"
        reg = f"{r['reg_iou']:.3f}" if "reg_iou" in r else "-"
        train = f"{r['train_s']:.0f}" if "train_s" in r else "-"
        lines.append(f"| {r['system']} | {auc} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['f1']:.3f} | {r['map']:.3f} | {reg} | {train} | "
                     f"{r.get('best_epoch', '-')} |")
    return "\n".join(lines)


def format_diagnostics(rows: list[dict]) -> str:
    """Per arch: the regression diagnostics (one line each)."""
    seen, lines = set(), []
    for r in rows:
        name = r["system"].split(" + ")[0]
        if "reg_iou" not in r or name in seen:
            continue
        seen.add(name)
        lines.append(f"- {name}: regressed IoU {r['reg_iou']:.3f}, distances exactly 0 "
                     f"{r['reg_zero']:.1%}, regressed lengths in 10-90 s "
                     f"{r['reg_in_range']:.1%}, clip seconds tied at the top score "
                     f"{r['score_ties']:.1%}, {r['params']:,} parameters")
    return "\n".join(lines)
