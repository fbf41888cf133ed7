"""The stage registry: one list drives the CLI and the Prefect flows, with no import circle."""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repurpose.orchestration import Orchestration, orchestration_from_section
from repurpose.params import ParamsError
from repurpose.stage_registry import STAGES, get_stage, run_standalone

ROOT = Path(__file__).resolve().parents[1]


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_cli_and_flows_are_built_from_the_registry() -> None:
    from flows.orchestrate import FLOWS
    from repurpose.cli import STAGES as CLI_STAGES
    from repurpose.cli import build_parser

    names = [s.name for s in STAGES]
    assert _subcommands(build_parser()) == [*names, "validate", "features", "clip"]
    assert list(FLOWS) == names and [f.name for f in FLOWS.values()] == names
    assert {s.name: (s.module, s.help) for s in STAGES} == CLI_STAGES
    for stage in STAGES:
        module = stage.load()
        assert stage.module == f"stages.{stage.name}"
        assert callable(module.add_arguments) and callable(module.main), stage.name
    assert not list((ROOT / "flows").glob("prepare.py"))  # no per-stage flow files
    with pytest.raises(KeyError, match="unknown stage 'nope'"):
        get_stage("nope")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports anywhere (function bodies and `__main__` blocks too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    return found


def test_no_import_circle_and_no_stage_calls_the_cli() -> None:
    for path in [*(ROOT / "flows").glob("*.py"), *(ROOT / "stages").glob("*.py")]:
        bad = {m for m in _imports(path) if m == "repurpose.cli" or m.startswith("repurpose.cli.")}
        assert not bad, f"{path.relative_to(ROOT)} imports the CLI: {sorted(bad)}"
    for lib in ("orchestration", "stage_registry"):
        bad = {m for m in _imports(ROOT / "repurpose" / f"{lib}.py")
               if m.split(".")[0] == "flows" or m == "repurpose.cli"}
        assert not bad, f"repurpose/{lib}.py imports {sorted(bad)}"
    code = ("import sys, flows.orchestrate, flows.runners, flows.pipeline; "
            "print('repurpose.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_orchestration_section_is_typed_and_checked() -> None:
    assert orchestration_from_section(None) == Orchestration()
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert orchestration_from_section(params["orchestration"]) == Orchestration()  # one default
    orch = orchestration_from_section({"task_runner": "serial", "workers": 3, "batch_size": 25})
    assert (orch.task_runner, orch.workers, orch.batch_size) == ("serial", 3, 25)
    assert orchestration_from_section({"batch_size": "auto"}).batch_size == "auto"
    for bad, message in (({"batch_size": 0}, "orchestration.batch_size"),
                         ({"batch_size": "10"}, "orchestration.batch_size"),
                         ({"batch_size": True}, "orchestration.batch_size"),
                         ({"task_runner": "celery"}, "orchestration.task_runner"),
                         ({"prefect": "yes"}, "orchestration.prefect"),
                         ({"task_runer": "serial"}, r"unknown key\(s\) task_runer"),
                         ({"workers": "2"}, "orchestration.workers: expected"),
                         ({"workers": 0}, "orchestration.workers: too small")):
        with pytest.raises(ParamsError, match=message):
            orchestration_from_section(bad)


def test_batch_size_auto_caps_task_runs_per_stage() -> None:
    from flows.runners import MAX_TASK_RUNS, batch_size_for

    assert batch_size_for("auto", 0) == batch_size_for("auto", MAX_TASK_RUNS) == 1
    assert batch_size_for("auto", MAX_TASK_RUNS + 1) == 2
    for n in (1001, 8400, 123_457):
        size = batch_size_for("auto", n)
        assert -(-n // size) <= MAX_TASK_RUNS < -(-n // (size - 1))
    assert batch_size_for(7, 8400) == 7 and batch_size_for(1, 8400) == 1


def test_params_yaml_orchestration_section_parses() -> None:
    import yaml

    section = yaml.safe_load((ROOT / "params.yaml").read_text())["orchestration"]
    assert "batch_size" in section
    assert orchestration_from_section(section).batch_size == section["batch_size"]


def test_standalone_stage_has_no_prefect_and_reports_errors_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    help_text = subprocess.run([sys.executable, "-m", "stages.download", "--help"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    assert "--task-runner" in help_text and "--videos" in help_text
    assert "--prefect" not in help_text

    called = []

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--out", required=True)

    def main(args: argparse.Namespace, mapper) -> int:  # noqa: ANN001
        called.append((args.out, args.task_runner, list(mapper(str, [1, 2], key=str))))
        return 0

    params = tmp_path / "params.yaml"
    params.write_text("orchestration: {task_runner: threads}\n")
    assert run_standalone("prepare", add_arguments, main,
                          ["--params", str(params), "--out", "x"]) == 0
    assert called == [("x", "serial", [(1, "1"), (2, "2")])]  # serial unless told
    rc = run_standalone("prepare", add_arguments, main,
                        ["--params", str(tmp_path / "missing.yaml"), "--out", "x"])
    assert rc == 2 and "missing.yaml: params file not found" in capsys.readouterr().err
    rc = run_standalone("prepare", add_arguments, main,
                        ["--params", str(params), "--out", "x", "--task-runner", "dask"])
    assert rc == 2 and "needs orchestration.prefect: true" in capsys.readouterr().err


GOOD = {"youtube_id": "abcdefghijk", "timeRange": [0, 100.0], "segments": [[10.5, 30.25]],
        "timeRangeOffset": [0, 100.0], "segmentsOffset": [[10.5, 30.25]], "coverage": 0.2}


@pytest.fixture
def api(prefect_server, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The session's real server, also when Prefect was imported (settings loaded) earlier."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", prefect_server["url"])
    with temporary_settings(updates={PREFECT_API_URL: prefect_server["url"]}):
        yield prefect_server["url"]


@pytest.mark.slow
def test_stage_runs_as_its_registry_flow_on_a_server(api: str, tmp_path: Path) -> None:
    import httpx

    from repurpose.cli import main as cli_main

    splits = tmp_path / "splits"
    splits.mkdir()
    for split in ("train", "val", "test"):
        (splits / f"{split}.json").write_text(json.dumps([GOOD]))
    params = tmp_path / "params.yaml"
    params.write_text("prepare: {dataset: mini, splits: [train, val, test]}\n")
    body = {"flows": {"name": {"any_": ["prepare"]}}}
    before = {r["id"] for r in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()}
    outs = {}
    for mode in ("--prefect", "--no-prefect"):
        out = tmp_path / mode.strip("-")
        assert cli_main(["prepare", mode, "--params", str(params), "--splits-dir", str(splits),
                         "--out", str(out)]) == 0
        outs[mode] = (out / "windows.parquet").read_bytes()
    assert outs["--prefect"] == outs["--no-prefect"]
    runs = httpx.post(f"{api}/flow_runs/filter", json=body, timeout=30).json()
    new = [r for r in runs if r["id"] not in before]  # the server is shared with other tests
    assert [r["state_type"] for r in new] == ["COMPLETED"]
