"""Prefect's cost per stage, and the cost of a no-op `dvc repro`, measured in one run.

    .venv/bin/python benchmarks/prefect_overhead.py [--repeat 3]

Runs the `prepare` stage on the real Repurpose-10K val+test files (or the sample if they are
absent) three ways: directly (`--no-prefect`), as a Prefect flow with a temporary (ephemeral)
server, and as a flow against a running `prefect server` on 127.0.0.1. Then times `dvc repro`
when nothing changed in a repo copy. Prints a table of median wall seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REAL = ROOT.parent / "shared" / "data" / "repurpose10k"


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def start_server(home: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_UI_API_URL":
           f"http://127.0.0.1:{port}/api"}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(180):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("prefect server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="prefect-overhead-"))
    splits = work / "splits"
    if REAL.is_dir():
        shutil.copytree(REAL, splits)
        names = "[val, test]"
    else:
        subprocess.run([str(BIN / "repurpose"), "sample", "--no-prefect", "--out-splits",
                        str(splits), "--out-videos", str(work / "videos")], check=True,
                       cwd=ROOT)
        names = "[train, val, test]"
    (work / "params.yaml").write_text(f"prepare: {{dataset: bench, splits: {names}}}\n")
    base = {**os.environ, "PREFECT_HOME": str(work / "client"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PATH": f"{BIN}:{os.environ['PATH']}"}
    base.pop("PREFECT_API_URL", None)
    stage = [str(BIN / "repurpose"), "prepare", "--params", str(work / "params.yaml"),
             "--splits-dir", str(splits), "--out", str(work / "prepared")]
    rows = {}
    rows["prepare, no Prefect"] = [timed([*stage, "--no-prefect"], work, base)
                                   for _ in range(args.repeat)]
    rows["prepare, Prefect ephemeral"] = [timed([*stage, "--prefect"], work, base)
                                          for _ in range(args.repeat)]
    port = 4399
    server = start_server(work / "server", port)
    try:
        env = {**base, "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
        rows["prepare, Prefect server"] = [timed([*stage, "--prefect"], work, env)
                                           for _ in range(args.repeat)]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import copy_repo
    from tests.test_pipeline_e2e import SMALL_SAMPLE, set_params

    repo = copy_repo(work / "repo")
    set_params(repo, "sample", **SMALL_SAMPLE)
    subprocess.run([str(BIN / "dvc"), "repro"], cwd=repo, env=base, check=True,
                   capture_output=True)
    rows["dvc repro, nothing changed"] = [timed([str(BIN / "dvc"), "repro"], repo, base)
                                          for _ in range(args.repeat)]
    print(f"{'case':32s} {'median s':>9s} {'min s':>7s}   (n={args.repeat})")
    for name, values in rows.items():
        print(f"{name:32s} {statistics.median(values):9.2f} {min(values):7.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
