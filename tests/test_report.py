"""The report: its sections, self-contained HTML, no broken image in a headless Chromium."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from repurpose.cli import main as cli
from repurpose.evaluation.baselines import baseline_metrics, even_predictions
from repurpose.evaluation.evaluator import evaluate, join, load_ground_truth
from tests.synthetic_training import make_synthetic, write_params

CHROMIUM = Path("/usr/bin/chromium")
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.from(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var pre = document.createElement('pre');
  pre.id = 'img-check';
  pre.textContent = 'IMAGES ' + imgs.length + ' BROKEN ' + broken.length;
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report from synthetic data, evenly spaced segments standing in for the model."""
    root = tmp_path_factory.mktemp("report")
    data = make_synthetic(root / "data", counts={"train": 3, "val": 1, "test": 4},
                          durations=(100, 400))
    gt = load_ground_truth(data.splits["test"])
    windows = even_predictions(join(gt, {}), 25.0, 0.6, 1)
    lines = []
    for w in windows:
        yid, span = w.key.split("@")
        start, end = (float(x) for x in span.split("-"))
        lines.append(json.dumps({"youtube_id": yid, "window": [start, end],
                                 "segments": w.pred.tolist()}))
    pred = root / "test.jsonl"
    pred.write_text("\n".join(lines) + "\n")
    (root / "metrics.json").write_text(json.dumps(evaluate(windows)))
    (root / "baselines.json").write_text(json.dumps(baseline_metrics(
        windows, gt.clip_lengths(), per_minute=0.3, min_segments=1, seed=0, draws=2,
        thresholds=(0.5, 0.6, 0.7, 0.8, 0.9), bucket_edges=(60, 300))))
    rows = ["epoch,lr,train_loss,train_cls,train_reg,train_align,val_loss,val_precision,"
            "val_recall,val_f1,val_map,best,seconds"]
    for e in range(1, 6):
        rows.append(f"{e},0.001,{10 / e},{1 / e},{9 / e},0,{11 / e},{0.1 * e},{0.05 * e},"
                    f"{0.07 * e},{0.04 * e},{int(e == 4)},0.1")
    (root / "curves.csv").write_text("\n".join(rows) + "\n")
    params = write_params(root / "params.yaml")
    assert cli(["report", "--params", str(params), "--no-prefect",
                "--metrics", str(root / "metrics.json"),
                "--baselines", str(root / "baselines.json"),
                "--curves", str(root / "curves.csv"), "--predictions", str(pred),
                "--windows", str(data.windows), "--features", str(data.features),
                "--ledger", str(data.ledger), "--model", str(root / "no-model"),
                "--out", str(root / "reports")]) == 0
    return root / "reports"


def test_markdown_has_every_section(report_dir: Path) -> None:
    md = (report_dir / "report.md").read_text()
    for needle in ("| tIoU | precision | recall | f1 | map |", "| system |", "random", "even",
                   "By window length", "best epoch on val: 4", "Data funnel",
                   "figures/thresholds.png", "figures/training.png", "figures/timelines.png",
                   "figures/funnel.png", "| train | 5 | 5 | 4/1 |"):
        assert needle in md, needle
    for name in ("thresholds", "training", "timelines", "funnel"):
        assert (report_dir / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_html_is_self_contained(report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<script" not in page and "href=" not in page and "<link" not in page
    assert page.count("<table>") >= 4


def test_missing_inputs_are_named_not_fatal(tmp_path: Path, report_dir: Path) -> None:
    metrics = report_dir.parent / "metrics.json"
    params = write_params(tmp_path / "params.yaml")
    assert cli(["report", "--params", str(params), "--no-prefect", "--metrics", str(metrics),
                "--curves", str(tmp_path / "absent.csv"), "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Training curves: not available" in md and "Baselines: not available" in md


@pytest.mark.skipif(not CHROMIUM.exists(),
                    reason="needs Debian chromium (apt-get install -y chromium) at /usr/bin")
def test_headless_chromium_renders_every_image(tmp_path: Path, report_dir: Path) -> None:
    page = (report_dir / "report.html").read_text()
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    run = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
         "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r"IMAGES (\d+) BROKEN (\d+)", run.stdout)
    assert found, run.stderr[-2000:]
    assert found.groups() == ("4", "0")

