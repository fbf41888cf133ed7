"""The report's figures as PNG bytes (matplotlib, Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRIC_TITLES = {"precision": "precision (reference metric)", "recall": "recall", "f1": "F1",
                 "map": "mAP (ActivityNet)"}
SYSTEM_STYLE = {"model": ("C0", "o", "-"), "random": ("C3", "s", "--"), "even": ("C2", "^", ":")}


def _png(fig) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def threshold_curves(systems: Mapping[str, Mapping], thresholds: Sequence[str]) -> bytes:
    """Precision, recall, F1 and mAP against the tIoU threshold, one line per system."""
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4), sharey=True)
    x = [float(t) for t in thresholds]
    for ax, metric in zip(axes, METRIC_TITLES, strict=True):
        for name, result in systems.items():
            colour, marker, line = SYSTEM_STYLE.get(name, ("C7", ".", "-"))
            ax.plot(x, [result[metric][t] for t in thresholds], color=colour, marker=marker,
                    linestyle=line, label=name)
        ax.set_title(METRIC_TITLES[metric])
        ax.set_xlabel("tIoU threshold")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].legend()
    return _png(fig)


def training_curves(rows: Sequence[Mapping[str, str]]) -> bytes:
    """Train/val loss and val metrics per epoch (from curves.csv rows)."""

    def col(name: str) -> tuple[list[float], list[float]]:
        pts = [(float(r["epoch"]), float(r[name])) for r in rows if r.get(name) not in ("", None)]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
    for name, style in (("train_loss", "-"), ("val_loss", "--")):
        ax1.plot(*col(name), style, label=name)
    ax1.set_xlabel("epoch")
    ax1.set_title("loss per window")
    ax1.legend()
    ax1.grid(alpha=0.3)
    for name in ("val_map", "val_precision", "val_recall"):
        ax2.plot(*col(name), marker=".", label=name)
    best = [float(r["epoch"]) for r in rows if r.get("best") == "1"]
    if best:
        ax2.axvline(best[-1], color="k", alpha=0.3, label=f"best epoch {best[-1]:g}")
    ax2.set_xlabel("epoch")
    ax2.set_title("val metrics (avg over tIoU thresholds)")
    ax2.set_ylim(0, 1)
    ax2.legend()
    ax2.grid(alpha=0.3)
    return _png(fig)


def timelines(items: Sequence[tuple[str, float, Sequence, Sequence]]) -> bytes:
    """Ground truth vs predicted segments for a few windows: (title, duration, gt, pred)."""
    n = max(1, len(items))
    fig, axes = plt.subplots(n, 1, figsize=(11, 1.25 * n + 0.4), squeeze=False)
    for ax, (title, duration, gt, pred) in zip(axes[:, 0], items, strict=False):
        ax.broken_barh([(a, b - a) for a, b in gt], (1.1, 0.8), facecolors="C2")
        for s, e, score in pred:
            ax.broken_barh([(s, e - s)], (0.1, 0.8), facecolors="C0",
                           alpha=0.35 + 0.65 * max(0.0, min(1.0, score)))
        ax.set_xlim(0, duration)
        ax.set_ylim(0, 2)
        ax.set_yticks([0.5, 1.5], ["predicted", "ground truth"])
        ax.set_title(title, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("window seconds")
    fig.tight_layout()
    return _png(fig)


def funnel_chart(funnels: Mapping[str, Mapping]) -> bytes:
    """Per split: windows -> of downloaded videos -> all features present -> used."""
    stages = ("windows", "downloaded", "features present", "used")
    fig, ax = plt.subplots(figsize=(8, 0.9 + 0.8 * len(funnels)))
    height = 0.8 / len(stages)
    for k, f in enumerate(funnels.values()):
        downloaded = f["windows"] - f["windows_not_downloaded"]
        values = (f["windows"], downloaded, downloaded - f["windows_missing_any"],
                  f["windows_used"])
        for j, (label, v) in enumerate(zip(stages, values, strict=True)):
            ax.barh(k + j * height, v, height, color=f"C{j}", label=label if k == 0 else None)
            ax.text(v, k + j * height, f" {v}", va="center", fontsize=8)
    ax.set_yticks([k + 0.3 for k in range(len(funnels))], list(funnels))
    ax.invert_yaxis()
    ax.set_xlabel("windows")
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)
