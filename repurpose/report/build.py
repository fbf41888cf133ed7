"""Assemble the benchmark report from the pipeline's outputs (no torch, no model needed).

Sections: headline (model vs the two baselines), metrics by tIoU threshold, precision/recall
(and F1, mAP) curves over tIoU, results per window-length bucket, training curves, timelines
of ground truth vs prediction for a few windows, the data funnel, and the model's provenance.
Missing optional inputs (no curves, no baselines, ...) are stated in the report, not fatal.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from repurpose import io
from repurpose.evaluation.evaluator import load_predictions
from repurpose.evaluation.metrics import METRICS
from repurpose.report import figures
from repurpose.report.render import (
    Document,
    Figure,
    Heading,
    Paragraph,
    Table,
    to_html,
    to_markdown,
)

TITLE = "Repurpose: clip localisation benchmark report"


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report can use; only `metrics` is required."""

    metrics: dict
    baselines: dict | None = None
    curves: list[dict] | None = None
    timelines: list[tuple[str, float, list, list]] | None = None
    funnels: dict[str, dict] | None = None
    model_info: dict | None = None
    sources: dict[str, str] | None = None


def read_curves(path: str | os.PathLike[str]) -> list[dict]:
    """Rows of curves.csv as dicts of strings."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def timeline_items(predictions_path: str | os.PathLike[str], windows: Sequence, count: int
                   ) -> list[tuple[str, float, list, list]]:
    """`count` windows spread evenly over the (sorted) windows of the predictions' split."""
    preds = load_predictions(predictions_path)
    chosen = sorted(windows, key=lambda w: w.window_id)
    if not chosen or count <= 0:
        return []
    picks = np.unique(np.linspace(0, len(chosen) - 1, min(count, len(chosen))).round().astype(int))
    items = []
    for i in picks:
        w = chosen[int(i)]
        pred = preds.get(w.window_id, np.zeros((0, 3)))
        items.append((f"{w.window_id} ({w.duration:g} s)", float(w.duration),
                      [tuple(c) for c in w.clips], [tuple(p) for p in pred.tolist()]))
    return items


def _f(x: float) -> str:
    return f"{x:.4f}"


def _thresholds(metrics: Mapping) -> list[str]:
    return [k for k in metrics["precision"] if k != "avg"]


def build_document(inp: ReportInputs) -> Document:
    """The report as a Document."""
    doc = Document(TITLE)
    m = inp.metrics
    systems = {"model": m}
    if inp.baselines:
        systems.update({k: inp.baselines[k] for k in ("random", "even") if k in inp.baselines})
    _summary(doc, inp, systems)
    _by_threshold(doc, m, systems)
    _by_length(doc, m)
    _training(doc, inp)
    _timelines(doc, inp)
    _funnel(doc, inp)
    _model_and_inputs(doc, inp)
    return doc


def _summary(doc: Document, inp: ReportInputs, systems: dict[str, dict]) -> None:
    """Counts, the headline table and the verdict against the baselines."""
    m = inp.metrics
    counts = m.get("counts", {})
    with_pred = counts.get("windows_with_predictions", "?")
    doc.add(Heading("Summary"), Paragraph(
        f"{counts.get('windows', '?')} evaluated windows ({with_pred} with predictions), "
        f"{counts.get('predictions', '?')} predicted segments, "
        f"{counts.get('clips', '?')} ground-truth clips. 'precision' is the reference metric "
        "(share of predictions whose best tIoU with a clip reaches the threshold, averaged over "
        "windows; an empty window scores 0); it rewards predicting few clips, so read it with "
        "recall and mAP (ActivityNet-style, one-to-one matching)."))
    doc.add(Table(("system", *[f"{x} avg" for x in METRICS]),
                  tuple((name, *[_f(r[x]["avg"]) for x in METRICS])
                        for name, r in systems.items())))
    if len(systems) > 1:
        beats = {x: all(m[x]["avg"] > r[x]["avg"] for n, r in systems.items() if n != "model")
                 for x in ("map", "precision")}
        verdict = "; ".join(f"{x} avg: {'beats' if ok else 'does NOT beat'} both baselines"
                            for x, ok in beats.items())
        settings = inp.baselines.get("settings", {})
        doc.add(Paragraph(
            f"Model vs baselines: {verdict}. Baselines: 'random' = segments with lengths drawn "
            f"from {settings.get('length_source', 'the ground truth')} "
            f"({settings.get('draws', '?')} draws averaged), 'even' = evenly spaced segments of "
            f"{settings.get('even_length', 0):.1f} s; both predict as many segments per window "
            "as the model's post-processing cap allows."))
    else:
        doc.add(Paragraph("Baselines: not available (run evaluate with --baselines-out)."))


def _by_threshold(doc: Document, m: dict, systems: dict[str, dict]) -> None:
    """Every metric at every tIoU threshold, against the baselines, with a figure."""
    keys = _thresholds(m)
    doc.add(Heading("Metrics by tIoU threshold"),
            Table(("tIoU", *METRICS),
                  tuple((k, *[_f(m[x][k]) for x in METRICS]) for k in [*keys, "avg"])))
    if len(systems) > 1:
        for x in ("precision", "map"):
            doc.add(Paragraph(f"{x} by threshold, model against the baselines:"),
                    Table(("tIoU", *systems),
                          tuple((k, *[_f(r[x][k]) for r in systems.values()])
                                for k in [*keys, "avg"])))
    doc.add(Figure("thresholds.png", figures.threshold_curves(systems, keys),
                   "Precision, recall, F1 and mAP against the tIoU threshold"))


def _by_length(doc: Document, m: dict) -> None:
    """Metrics per window-length bucket."""
    if m.get("buckets"):
        doc.add(Heading("By window length"),
                Table(("window length", "windows", *[f"{x} avg" for x in METRICS]),
                      tuple((label, str(b["windows"]), *[_f(b[x]["avg"]) for x in METRICS])
                            for label, b in m["buckets"].items())))


def _training(doc: Document, inp: ReportInputs) -> None:
    """Epochs, the best epoch and the training curves."""
    doc.add(Heading("Training"))
    if inp.curves:
        best = [r for r in inp.curves if r.get("best") == "1"]
        doc.add(Paragraph(f"{len(inp.curves)} epochs; best epoch on val: "
                          f"{best[-1]['epoch'] if best else '?'} (selected on the val split, "
                          "never on test)."),
                Figure("training.png", figures.training_curves(inp.curves),
                       "Training curves: loss per window and val metrics per epoch"))
    else:
        doc.add(Paragraph("Training curves: not available."))


def _timelines(doc: Document, inp: ReportInputs) -> None:
    """Ground-truth clips against predicted segments."""
    doc.add(Heading("Ground truth vs prediction"))
    if inp.timelines:
        doc.add(Figure("timelines.png", figures.timelines(inp.timelines),
                       "Timelines: ground-truth clips (green) and predicted segments (blue, "
                       "darker = higher score)"))
    else:
        doc.add(Paragraph("Timelines: not available (needs --predictions and --windows)."))


def _funnel(doc: Document, inp: ReportInputs) -> None:
    """Windows -> downloaded -> features present -> used, per split."""
    doc.add(Heading("Data funnel"))
    if inp.funnels:
        rows = []
        for split, f in inp.funnels.items():
            downloaded = f["windows"] - f["windows_not_downloaded"]
            ledger = "" if f["ledger_checked"] else " (no ledger)"
            rows.append((split, str(f["windows"]), str(f["videos"]),
                         f"{f['videos_downloaded']}/{f['videos_not_downloaded']}{ledger}",
                         str(downloaded), str(downloaded - f["windows_missing_any"]),
                         str(f["windows_used"]), str(f["windows_truncated"])))
        doc.add(Table(("split", "windows", "videos", "videos ok/failed", "windows downloaded",
                       "features present", "used", "truncated"), tuple(rows)),
                Figure("funnel.png", figures.funnel_chart(inp.funnels),
                       "Data funnel: windows -> downloaded -> all features present -> used"))
    else:
        doc.add(Paragraph("Data funnel: not available (needs --windows and --features)."))


def _model_and_inputs(doc: Document, inp: ReportInputs) -> None:
    """The trained model's identity and the input paths."""
    if inp.model_info:
        info = inp.model_info
        feats = ", ".join(f"{k} {v.get('backend')} ({v.get('dim')}-d)"
                          for k, v in info.get("features", {}).items())
        doc.add(Heading("Model"), Table(("field", "value"), (
            ("parameters", f"{info.get('n_parameters', 0):,}"),
            ("features", feats),
            ("sizes", json.dumps(info.get("model", {}))),
            ("epochs trained", str(info.get("epochs_trained"))),
            ("best epoch (val)", str(info.get("best", {}).get("epoch"))),
            ("device / processes", f"{info.get('device')} / {info.get('world_size')}"),
            ("params hash", str(info.get("params_hash", ""))[:16]),
            ("data hash", str(info.get("data_hash", ""))[:16]),
        )))
    if inp.sources:
        doc.add(Heading("Inputs"), Table(("input", "path"), tuple(inp.sources.items())))


def write_report(doc: Document, out_dir: str | os.PathLike[str]) -> Path:
    """Write `out_dir`/figures/*.png, report.md and report.html, each atomically; other files in
    `out_dir` are left alone."""
    out = Path(out_dir)
    with io.atomic_dir(out / "figures") as figures_dir:
        for fig in doc.figures():
            io.write_bytes(figures_dir / fig.name, fig.png)
    io.write_text(out / "report.md", to_markdown(doc))
    io.write_text(out / "report.html", to_html(doc))
    return out

