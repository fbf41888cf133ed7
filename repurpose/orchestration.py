"""How a stage is run: the `orchestration` params section, its CLI overrides, Prefect or not.

Below both the CLI (`repurpose/cli.py`) and the Prefect flows (`flows/`), which import it;
it imports neither. These settings change how work is scheduled, never what is computed, so
they are deliberately not DVC params.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from repurpose.params import DEFAULT_PARAMS, ParamsError, load_params, require

TASK_RUNNERS = ("serial", "threads", "dask")


@dataclass(frozen=True)
class Orchestration:
    """How a stage is run: inside Prefect or not, and how per-video work is mapped."""

    prefect: bool | str = "auto"  # True | False | "auto" (Prefect when an API is configured)
    task_runner: str = "threads"
    workers: int = 2
    retries: int = 1
    dask_address: str | None = None
    # videos per Prefect task run: an integer, or "auto" (one per video up to 1,000 videos,
    # then batches: at most 1,000 task runs per stage; see flows/runners.py)
    batch_size: int | str = "auto"

    def checked(self) -> Orchestration:
        """This config, or a ParamsError naming the first bad key."""
        if self.prefect not in (True, False, "auto"):
            raise ParamsError(
                f"orchestration.prefect: expected true, false or auto, got {self.prefect!r}"
            )
        if self.task_runner not in TASK_RUNNERS:
            raise ParamsError(
                f"orchestration.task_runner: unknown {self.task_runner!r} "
                f"(choose one of {', '.join(TASK_RUNNERS)})"
            )
        size = self.batch_size
        if size != "auto" and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ParamsError(
                f"orchestration.batch_size: expected auto or an integer >= 1, got {size!r}"
            )
        return self


def orchestration_from_section(section: dict[str, Any] | None) -> Orchestration:
    """The typed config of a params `orchestration` section. Unlike the stages' sections it
    may be partial (keys it lacks take the class defaults, which are params.yaml's: a test
    checks), since it only schedules work; unknown keys and wrong types are refused."""
    section = {} if section is None else section
    if not isinstance(section, dict):
        raise ParamsError(f"params orchestration: expected a mapping, got {section!r}")
    names = {f.name for f in fields(Orchestration)}
    unknown = sorted(set(section) - names)
    if unknown:
        raise ParamsError(f"params orchestration: unknown key(s) {', '.join(map(str, unknown))}")
    kinds = {"prefect": (bool, str), "task_runner": str, "workers": int, "retries": int,
             "dask_address": (str, type(None)), "batch_size": (int, str)}
    given = {k: require(section, k, kinds[k], "orchestration") for k in section}
    orch = replace(Orchestration(), **given).checked()
    for name in ("workers", "retries"):
        if getattr(orch, name) < (1 if name == "workers" else 0):
            raise ParamsError(f"params orchestration.{name}: too small, got {getattr(orch, name)}")
    return orch


def orchestration_from(args: argparse.Namespace) -> Orchestration:
    """Read the `orchestration` params section, then apply CLI overrides."""
    orch = orchestration_from_section(load_params(args.params).get("orchestration"))
    overrides = {
        "prefect": getattr(args, "prefect", None),
        "task_runner": getattr(args, "task_runner", None),
        "workers": getattr(args, "workers", None),
        "dask_address": getattr(args, "dask_address", None),
    }
    return replace(orch, **{k: v for k, v in overrides.items() if v is not None}).checked()


def add_orchestration_arguments(parser: argparse.ArgumentParser, *, prefect: bool = True) -> None:
    """`--params` and the orchestration overrides (`--prefect` only when `prefect`)."""
    parser.add_argument(
        "--params", default=DEFAULT_PARAMS, help="params file (default: %(default)s)"
    )
    group = parser.add_argument_group("orchestration (overrides params.yaml 'orchestration')")
    if prefect:
        group.add_argument(
            "--prefect", action=argparse.BooleanOptionalAction, default=None,
            help="run inside a Prefect flow (default from params: auto = when a server is set)",
        )
    group.add_argument("--task-runner", choices=TASK_RUNNERS, default=None)
    group.add_argument("--workers", type=int, default=None)
    if prefect:
        group.add_argument("--dask-address", default=None,
                           help="address of a running Dask scheduler (with --task-runner dask)")


def prefect_api_configured() -> bool:
    """True if a Prefect API URL is set (environment or active profile): a server is in use."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    home = Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect")).expanduser()
    profiles = Path(os.environ.get("PREFECT_PROFILES_PATH", home / "profiles.toml"))
    try:
        data = tomllib.loads(profiles.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return False
    active = os.environ.get("PREFECT_PROFILE") or data.get("active", "ephemeral")
    return bool(data.get("profiles", {}).get(active, {}).get("PREFECT_API_URL"))


def use_prefect(orch: Orchestration) -> bool:
    """Whether a stage runs inside its Prefect flow.

    "auto" uses Prefect when an API server is configured: each stage then costs ~3 s of
    Prefect overhead; without a server Prefect would start a temporary one per stage (~15 s),
    so "auto" runs the same stage code directly instead.
    """
    if orch.prefect == "auto":
        return prefect_api_configured()
    return bool(orch.prefect)
