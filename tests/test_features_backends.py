"""Each feature backend through its real loading code.

Packaged real weights where they exist (efficientnet-lite0, MiniLM); for CLIP and Cnn14 a small
(CLIP) or full-size (Cnn14) randomly initialised model of the same class, saved in the real
on-disk format and loaded by the path a real checkpoint takes. These random models only test
the loading code; no test presents their outputs as features.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from repurpose.features.backends import (
    WeightsMissing,
    backend_keys,
    clear_model_cache,
    get_backend,
    resolve_device,
)
from repurpose.params import ParamsError


def frames(n: int = 3, size: int = 224, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (n, 1, 1, 3))
    grad = np.linspace(0, 60, size)[None, :, None, None]
    return np.clip(base + grad + rng.integers(0, 30, (n, size, size, 3)), 0, 255).astype(np.uint8)


def test_registry_and_settings_errors():
    assert backend_keys("visual") == ["clip-vit-b32", "efficientnet-lite0"]
    assert backend_keys("audio") == ["logmel", "panns-cnn14"]
    assert backend_keys("text") == ["minilm"]
    with pytest.raises(ParamsError, match="choose one of clip-vit-b32, efficientnet-lite0"):
        get_backend("visual", "resnet", {})
    with pytest.raises(ParamsError, match=r"extract\.visual\.efficientnet-lite0: unknown"):
        get_backend("visual", "efficientnet-lite0", {"wieghts": "x"},
                    where="extract.visual")
    assert resolve_device("auto") in ("cpu", "cuda")
    assert resolve_device("cpu") == "cpu"


def test_efficientnet_lite0_packaged_weights():
    b = get_backend("visual", "efficientnet-lite0", {})
    assert b.dim == 1280 and b.weights_identity().startswith("sha256:5793")
    x = frames(3)
    out = b.embed_frames(x)
    assert out.shape == (3, 1280) and out.dtype == np.float32 and np.isfinite(out).all()
    assert (out >= 0).all()  # ReLU6 head, average pooled
    assert not np.allclose(out[0], out[1])
    again = b.embed_frames(x[:1])  # batch composition does not change a frame's vector
    np.testing.assert_allclose(again[0], out[0], rtol=1e-4, atol=1e-4)


def test_efficientnet_wrong_file_refused(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"_conv_stem.weight": torch.zeros(1)}, bad)
    b = get_backend("visual", "efficientnet-lite0", {"weights": str(bad)},
                    where="extract.visual")
    with pytest.raises(WeightsMissing, match="not an efficientnet-lite0 state_dict"):
        b.model()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=224, patch_size=32,
                           projection_dim=16)
    model = CLIPVisionModelWithProjection(cfg).eval()
    folder = tmp_path_factory.mktemp("clip")
    model.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": {"height": 224, "width": 224}, "size": {"shortest_edge": 224},
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711]}))
    return folder, model


def test_clip_loads_saved_model_and_matches_it(tiny_clip):
    folder, model = tiny_clip
    b = get_backend("visual", "clip-vit-b32", {"weights": str(folder)}, where="extract.visual")
    assert b.dim == 16  # from config.json (512 for the real ViT-B/32)
    assert b.geometry.resize == 224 and b.geometry.crop == 224
    assert b.weights_identity().startswith("sha256:")
    x = frames(2)
    out = b.embed_frames(x)
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    pixels = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255 - mean) / std
    with torch.no_grad():
        expected = model(pixel_values=pixels).image_embeds.numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    normed = get_backend("visual", "clip-vit-b32", {
        "weights": str(folder), "normalize": True}).embed_frames(x)
    np.testing.assert_allclose(np.linalg.norm(normed, axis=1), 1.0, rtol=1e-5)


def test_clip_full_checkpoint_and_missing_or_partial_weights(tmp_path, tiny_clip):
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPTextModel

    _, vision = tiny_clip
    text_cfg = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                    num_attention_heads=2, vocab_size=100)
    full = CLIPModel(CLIPConfig(vision_config=vision.config.to_dict(), text_config=text_cfg,
                                projection_dim=16)).eval()
    full.save_pretrained(tmp_path / "full")  # a whole CLIP checkpoint, as the hub ships it
    b = get_backend("visual", "clip-vit-b32", {"weights": str(tmp_path / "full")})
    x = frames(1)
    with torch.no_grad():
        ref = full.get_image_features(pixel_values=b.to_tensor(x))
    ref = ref if torch.is_tensor(ref) else ref.pooler_output
    np.testing.assert_allclose(b.embed_frames(x), ref.numpy(), rtol=1e-4, atol=1e-5)

    missing = get_backend("visual", "clip-vit-b32", {
        "weights": str(tmp_path / "nowhere")}, where="extract.visual")
    with pytest.raises(WeightsMissing, match=r"extract\.visual\.clip-vit-b32\.weights.*"
                                             r"huggingface-cli download"):
        missing.weights_identity()
    CLIPTextModel(CLIPTextConfig(**text_cfg)).save_pretrained(tmp_path / "textonly")
    partial = get_backend("visual", "clip-vit-b32", {
        "weights": str(tmp_path / "textonly")})
    with pytest.raises(WeightsMissing, match="refusing to use random weights"):
        partial.model()


@pytest.fixture(scope="module")
def cnn14_checkpoint(tmp_path_factory):
    from repurpose.features.panns import new_cnn14

    torch.manual_seed(0)
    model = new_cnn14().eval()  # the panns_inference package's own class
    with torch.no_grad():  # non-trivial batch-norm statistics, as a trained model has
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("panns") / "Cnn14_mAP=0.431.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, path)  # the official layout
    return path, model


def test_cnn14_official_checkpoint_format(cnn14_checkpoint):
    path, model = cnn14_checkpoint
    clear_model_cache()
    b = get_backend("audio", "panns-cnn14", {"weights": str(path)})
    assert b.dim == 2048 and b.sample_rate == 32000
    rng = np.random.default_rng(0)
    seconds = (0.1 * rng.standard_normal((2, 32000))).astype(np.float32)
    out = b.embed_audio(seconds)
    with torch.no_grad():
        expected = model(torch.from_numpy(seconds))["embedding"].numpy()
    assert out.shape == (2, 2048)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_cnn14_bad_checkpoints(tmp_path):
    b = get_backend("audio", "panns-cnn14", {"weights": str(tmp_path / "no.pth")},
                    where="extract.audio")
    with pytest.raises(WeightsMissing, match=r"extract\.audio\.panns-cnn14\.weights.*zenodo"):
        b.weights_identity()
    partial = tmp_path / "partial.pth"
    torch.save({"model": {"fc1.weight": torch.zeros(2048, 2048)}}, partial)
    b = get_backend("audio", "panns-cnn14", {"weights": str(partial)})
    with pytest.raises(WeightsMissing, match="not a Cnn14 checkpoint"):
        b.model()


def test_front_ends_match_reference_math():
    """Package Cnn14's STFT = torch.stft; logmel's mel bank = Slaney's (via transformers)."""
    from transformers.audio_utils import mel_filter_bank

    from repurpose.features.panns import new_cnn14

    ours = get_backend("audio", "logmel", {}).model()[0].numpy().T  # (n_mels, bins)
    ref = mel_filter_bank(num_frequency_bins=201, num_mel_filters=64, min_frequency=50,
                          max_frequency=8000, sampling_rate=16000, norm="slaney",
                          mel_scale="slaney").T
    np.testing.assert_allclose(ours, ref, atol=1e-7)
    x = torch.randn(2, 32000)
    spec = new_cnn14().spectrogram_extractor(x)[:, 0]
    stft = torch.stft(x, 1024, 320, window=torch.hann_window(1024), center=True,
                      pad_mode="reflect", return_complex=True).abs() ** 2
    assert spec.shape == (2, 101, 513)
    assert float((spec - stft.transpose(1, 2)).abs().max() / stft.max()) < 1e-4


def test_logmel_weight_free():
    b = get_backend("audio", "logmel", {"n_mels": 32})
    assert b.dim == 64 and b.weights_identity() == "none:logmel-v1"
    t = np.arange(16000) / 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = b.embed_audio(np.stack([tone, np.zeros(16000, np.float32)]))
    assert out.shape == (2, 64) and np.isfinite(out).all()
    assert out[0, :32].max() > out[1, :32].max() + 50  # a tone is far above silence
    with pytest.raises(ParamsError, match="fmax"):
        get_backend("audio", "logmel", {"fmax": 20000.0})


def test_minilm_paraphrases_closer_than_unrelated():
    b = get_backend("text", "minilm", {})
    assert b.dim == 384 and b.weights_identity().startswith("sha256:")
    v = b.embed_texts([
        "The cat is sleeping on the sofa.",
        "A cat naps on the couch.",
        "Quarterly revenue grew by eight percent.",
    ], batch_size=8)
    assert v.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-4)
    para, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
    assert para > 0.6 and para > unrelated + 0.3


def test_minilm_missing_folder(tmp_path):
    b = get_backend("text", "minilm", {"weights": str(tmp_path)}, where="embed_text")
    with pytest.raises(WeightsMissing, match=r"embed_text\.minilm\.weights.*modules\.json"):
        b.weights_identity()


def test_bf16_precision_is_close_keyed_apart_and_checked():
    fp32 = get_backend("visual", "efficientnet-lite0", {})
    bf16 = get_backend("visual", "efficientnet-lite0", {"precision": "bf16"})
    assert "precision" not in fp32.params  # the fp32 key is the one made before the setting
    assert bf16.params == {**fp32.params, "precision": "bf16"}  # bf16 vectors: their own key
    x = frames(4)
    a, b = fp32.embed_frames(x), bf16.embed_frames(x)
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.99, cosine
    with pytest.raises(ParamsError, match=r"extract\.visual\.efficientnet-lite0\.precision: "
                                          r"expected one of fp32, bf16, got 'fp16'"):
        get_backend("visual", "efficientnet-lite0", {"precision": "fp16"}, where="extract.visual")
    with pytest.raises(ParamsError, match=r"panns-cnn14\.precision"):
        get_backend("audio", "panns-cnn14", {"precision": "int8"})
