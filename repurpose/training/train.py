"""Training from parsed settings and paths: what `repurpose train` and the torchrun entry call.

Reads params sections `model`, `train`, `postprocess` and `evaluate.thresholds`. Writes under
`out/`: `model.safetensors` (best epoch on val), `model.json` (config, feature backends and
dims, params/data/code hashes, funnel, best epoch), `curves.csv`, and `last/` (resume state).
Under torchrun (WORLD_SIZE > 1) it joins the process group (NCCL on CUDA, else gloo).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import torch

from repurpose import io
from repurpose.errors import UserError
from repurpose.evaluation.config import EvaluateConfig
from repurpose.features.shards import shard_paths
from repurpose.model.config import MODALITIES
from repurpose.model.postprocess import PostprocessConfig
from repurpose.model.registry import ModelSpec
from repurpose.params import ParamsError
from repurpose.training import checkpoint
from repurpose.training.config import TrainConfig
from repurpose.training.dataset import WindowDataset
from repurpose.training.index import ModalityIndex, index_features, load_plans, usable_videos
from repurpose.training.loop import BEST_WEIGHTS, FitResult, fit, resolve_device

log = logging.getLogger(__name__)

MODEL_JSON = "model.json"
FORMAT = "repurpose-model/2"  # /2: "model" = {"arch", "config"} (the arch registry)
CODE_DIRS = ("model", "training")  # source hashed into the resume fingerprint


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def data_hash(windows: Path, features: Path, ok: set[str] | None) -> str:
    """Hash of the windows table bytes, every shard's name, size and file metadata, and the set
    of downloaded videos (shard rows are not re-read: their metadata names their producer)."""
    h = hashlib.sha256(windows.read_bytes())
    for m in MODALITIES:
        for path in shard_paths(features / m):
            h.update(f"{m}/{path.name}:{path.stat().st_size}".encode())
            metadata = pq.read_schema(path).metadata or {}
            for key in sorted(metadata):  # producer identity, video index, result keys
                h.update(key + b"=" + metadata[key])
    h.update(json.dumps(sorted(ok) if ok is not None else None).encode())
    return h.hexdigest()


def code_hash() -> str:
    """Hash of the model and training source (a change means: do not resume)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for sub in CODE_DIRS:
        for path in sorted((root / sub).glob("*.py")):
            h.update(path.name.encode() + path.read_bytes())
    return h.hexdigest()


def feature_info(modalities: dict[str, ModalityIndex | None], features: Path) -> dict[str, dict]:
    """Backend identity and dims per modality; a clear error if a modality has no shards."""
    missing = [m for m in MODALITIES if modalities.get(m) is None]
    if missing:
        raise UserError("no feature shards for " + ", ".join(
            f"{m} ({features / m})" for m in missing))
    return {m: asdict(modalities[m].meta) for m in MODALITIES}


def distributed_env() -> tuple[int, int, int]:
    """(world, rank, local_rank) from torchrun's environment; (1, 0, 0) otherwise."""
    return (int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")),
            int(os.environ.get("LOCAL_RANK", "0")))


@dataclass(frozen=True)
class TrainSettings:
    """Everything `train` reads from params.yaml, parsed once at the stage edge."""

    model: ModelSpec
    train: TrainConfig
    post: PostprocessConfig
    thresholds: tuple[float, ...]  # evaluate.thresholds: the val metrics choosing the best epoch


def train_settings(params: Mapping[str, Any], arch: str | None = None) -> TrainSettings:
    """The sections `model`, `train`, `postprocess`, `evaluate` of a loaded params file;
    `arch` overrides `model.arch`."""
    def section(name: str) -> Any:
        if not isinstance(params.get(name), dict):
            raise ParamsError(f"params: missing section '{name}'")
        return params[name]

    return TrainSettings(ModelSpec.from_section(section("model"), arch),
                         TrainConfig.from_section(section("train")),
                         PostprocessConfig.from_section(section("postprocess")),
                         EvaluateConfig.from_section(section("evaluate")).thresholds)


def train_from_settings(settings: TrainSettings, windows: str | os.PathLike[str],
                        features: str | os.PathLike[str], ledger: str | os.PathLike[str] | None,
                        out: str | os.PathLike[str], **kwargs: Any) -> FitResult:
    """`train_model` with the parsed settings (keyword arguments as there)."""
    return train_model(settings.model, settings.train, settings.post, settings.thresholds,
                       windows, features, ledger, out, **kwargs)


def join_processes(train_cfg: TrainConfig) -> tuple[int, int, torch.device]:
    """(world, rank, device): under torchrun, join the process group (NCCL on CUDA, else gloo)
    and take this process's GPU; alone, (1, 0, the configured device)."""
    world, rank, local_rank = distributed_env()
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if train_cfg.batch_size < world:
            raise UserError(f"train.batch_size {train_cfg.batch_size} < {world} processes")
    device = resolve_device(train_cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return world, rank, device


def train_model(model_spec: ModelSpec, train_cfg: TrainConfig, post: PostprocessConfig,
                thresholds: tuple[float, ...], windows: str | os.PathLike[str],
                features: str | os.PathLike[str], ledger: str | os.PathLike[str] | None,
                out: str | os.PathLike[str], *, train_split: str = "train",
                val_split: str = "val", resume: bool = True,
                stop_after_steps: int | None = None) -> FitResult:
    """Train from config objects; write weights, model.json, curves and `last/` under `out`."""
    windows, features, out = Path(windows), Path(features), Path(out)
    if not windows.is_file():
        raise UserError(f"{windows}: windows table not found (run the prepare stage)")

    world, rank, device = join_processes(train_cfg)
    modalities = index_features(features)
    feats = feature_info(modalities, features)
    ok = usable_videos(ledger)
    train_plans, train_funnel = load_plans(windows, train_split, modalities, ok)
    val_plans, val_funnel = load_plans(windows, val_split, modalities, ok)
    if not train_plans:
        raise UserError(f"no usable '{train_split}' windows (see the counts above)")
    dims = {m: int(feats[m]["dim"]) for m in MODALITIES}
    sections = {"model": model_spec.to_record(), "train": train_cfg.to_dict(),
                "postprocess": post.to_dict(), "thresholds": list(thresholds)}
    params_hash = sha256_json(sections)
    dhash = data_hash(windows, features, ok)
    fingerprint = sha256_json({"params": params_hash, "data": dhash, "code": code_hash(),
                               "splits": [train_split, val_split]})
    out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        io.remove_stale_tmp(out)  # a killed run's half-written weights or model.json
    train_ds = WindowDataset(train_plans, features, train_cfg.cache_videos)
    val_ds = WindowDataset(val_plans, features, train_cfg.cache_videos)
    result = fit(model_spec, dims, train_cfg, post, thresholds, train_ds, val_ds, out,
                 fingerprint, resume=resume, world=world, rank=rank, device=device,
                 stop_after_steps=stop_after_steps)
    if rank == 0:
        io.write_json(out / MODEL_JSON, {
            "format": FORMAT,
            "weights": BEST_WEIGHTS,
            "model": model_spec.to_record(),
            "dims": dims,
            "features": feats,
            "params": sections,
            "params_hash": params_hash,
            "data_hash": dhash,
            "data": {"windows": str(windows), "features": str(features),
                     "ledger": str(ledger) if ledger else None,
                     "splits": {"train": train_split, "val": val_split},
                     "funnel": {"train": train_funnel.to_dict(), "val": val_funnel.to_dict()}},
            "best": result.best,
            "epochs_trained": len(result.history),
            "resumed_from_epoch": result.resumed_from_epoch,
            "n_parameters": result.n_parameters,
            "device": result.device,
            "world_size": world,
            "torch": torch.__version__,
        })
    return result


def read_model_info(model_dir: str | os.PathLike[str]) -> dict:
    """model.json of a trained model folder; a UserError naming the file and what is wrong."""
    info_path = Path(model_dir) / MODEL_JSON
    if not info_path.is_file():
        raise UserError(f"{info_path}: not found (train a model first)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise UserError(f"{info_path}: not valid JSON ({str(exc)[:120]})") from None
    if not isinstance(info, dict):
        raise UserError(f"{info_path}: expected a JSON object")
    if info.get("format") != FORMAT:
        raise UserError(f"{info_path}: field 'format': unknown {info.get('format')!r} "
                        f"(expected {FORMAT}; retrain with this version)")
    for key, kind in (("model", dict), ("dims", dict), ("weights", str), ("params", dict)):
        if not isinstance(info.get(key), kind):
            raise UserError(f"{info_path}: field '{key}': missing or not a {kind.__name__}")
    weights = info["weights"]
    if Path(weights).name != weights or not weights.endswith(".safetensors"):
        raise UserError(f"{info_path}: field 'weights': expected a .safetensors file name "
                        f"in the folder, got {weights!r}")
    return info


def load_model(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, dict]:
    """The trained network (eval mode, safetensors weights) and its model.json."""
    folder = Path(model_dir)
    info = read_model_info(folder)
    where = folder / MODEL_JSON
    try:
        spec = ModelSpec.from_record(info["model"])
        net = spec.build(info["dims"])
    except (TypeError, ValueError, KeyError) as exc:
        raise UserError(f"{where}: field 'model': {exc}") from None
    weights = folder / info["weights"]
    if not weights.is_file():
        raise UserError(f"{weights}: weights file not found (named by {where})")
    try:
        net.load_state_dict(checkpoint.load_weights(weights))
    except Exception as exc:  # safetensors raises its own error types  # noqa: BLE001
        raise UserError(f"{weights}: cannot load these weights into the "
                        f"{spec.arch} model ({str(exc)[:160]})") from None
    return net.to(device).eval(), info

