"""Loading a frozen open_clip CLIP by name, from a local file, or the bundled offline demo model.

Backbone specs:
  demo                        the project's own small CLIP in assets/demo_clip (works offline; installed, in
                              the package dapt_studio: see dapt_core/bundled.py)
  NAME:TAG                    open_clip architecture and pretrained tag, e.g. ViT-B-16:openai
  NAME:/path/to/weights.pt    an architecture with weights from a local .pt/.bin/.safetensors file
  local-dir:/path/to/folder   open_clip's folder format (open_clip_config.json + weights)
  NAME:random                 random weights (benchmarks and tests only), seeded so it is reproducible

Weights that cannot be had fail within seconds with one message that says what was looked for
and how to supply it, instead of open_clip's ~46 s of download retries on an offline machine.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import open_clip
import torch
from open_clip.transformer import TextTransformer, VisionTransformer
from torch import nn

from ..bundled import demo_model_dir
from ..data.images import sha256_of
from ..errors import BackboneUnavailable
from .backbone_specs import DEMO, LOCAL_DIR_PREFIX
from .device import autocast, autocast_dtype, describe_cpu, pick_device
from .transforms import Preprocessing

log = logging.getLogger(__name__)

DEMO_DIR = demo_model_dir()  # the checkout's assets/demo_clip, else the installed wheel's copy
RANDOM_TAG = "random"
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")
# Seed for NAME:random weights, so that a prompt file tuned on them can be reloaded.
RANDOM_WEIGHTS_SEED = 0
NETWORK_PROBE_SECONDS = 3.0
# Folders or files of extra open_clip architecture JSONs (the name is the file stem), separated
# by os.pathsep, for custom CLIPs; registered once on import.
MODEL_CONFIGS_ENV = "DAPT_MODEL_CONFIGS"


def _register_extra_configs() -> None:
    for entry in filter(None, os.environ.get(MODEL_CONFIGS_ENV, "").split(os.pathsep)):
        if Path(entry).exists():
            open_clip.add_model_config(entry)
        else:
            log.warning("%s names %s, which does not exist", MODEL_CONFIGS_ENV, entry)


_register_extra_configs()


@dataclass
class Backbone:
    """A frozen CLIP and everything needed to feed it and to identify it later.

    `weights_id` names the exact weights: the pretrained tag, "sha256:<hex>" of a weights file,
    or "random".
    """

    spec: str
    model: nn.Module
    tokenizer: object
    preprocessing: Preprocessing
    weights_id: str
    device: torch.device
    # Zero-shot prompt templates ("a photo of a {}.") the model's makers recommend, if any.
    zero_shot_templates: tuple[str, ...] | None = None

    @property
    def visual(self) -> nn.Module:
        return self.model.visual

    @property
    def text_tower(self) -> nn.Module:
        """The module holding token_embedding, transformer, ln_final, ... (CLIP keeps them on itself)."""
        return getattr(self.model, "text", self.model)

    @property
    def embed_dim(self) -> int:
        projection = getattr(self.text_tower, "text_projection", None)
        if isinstance(projection, nn.Linear):
            return projection.out_features
        if projection is not None:
            return int(projection.shape[1])
        return self.text_width

    @property
    def text_width(self) -> int:
        return int(self.text_tower.token_embedding.weight.shape[1])

    @property
    def vision_width(self) -> int | None:
        return int(self.visual.class_embedding.shape[-1]) if self.supports_visual_prompt else None

    @property
    def precision(self) -> torch.dtype | None:
        """The reduced precision its frozen towers run in on its device, None for fp32 (see device.py)."""
        return autocast_dtype(self.device, max(self.vision_width or 0, self.text_width), self._cpu_bf16_pays)

    def _cpu_bf16_pays(self) -> bool:
        from .cpu_bf16_check import bf16_pays

        return self.supports_visual_prompt and bf16_pays(self.visual, self.preprocessing.size, describe_cpu())

    def autocast(self):
        """A context manager running its matrix work in `precision`."""
        return autocast(self.device, self.precision)

    @property
    def patch_size(self) -> int | None:
        return int(self.visual.conv1.kernel_size[0]) if self.supports_visual_prompt else None

    @property
    def context_length(self) -> int:
        return int(self.text_tower.positional_embedding.shape[0])

    @property
    def supports_visual_prompt(self) -> bool:
        return isinstance(self.visual, VisionTransformer)

    @property
    def supports_text_prompt(self) -> bool:
        tower = self.text_tower
        built_in = tower is self.model and hasattr(tower, "token_embedding")
        return built_in or (isinstance(tower, TextTransformer) and tower.cls_emb is None)

    def describe(self) -> dict:
        """Identity and shape of the backbone, stored in prompt files and checked on load."""
        return {
            "spec": self.spec,
            "weights": self.weights_id,
            "embed_dim": self.embed_dim,
            "text_width": self.text_width,
            "vision_width": self.vision_width,
            "patch_size": self.patch_size,
            "context_length": self.context_length,
        }


def load_backbone(spec: str = DEMO, device: str | torch.device | None = None) -> Backbone:
    """Load a CLIP named by `spec` (see the module docstring), frozen and in eval mode on `device`."""
    spec = spec.strip()
    target = device if isinstance(device, torch.device) else pick_device(device)
    if spec == DEMO:
        model, tokenizer, weights_id = _load_local_dir(DEMO_DIR, spec)
    elif spec.startswith(LOCAL_DIR_PREFIX):
        model, tokenizer, weights_id = _load_local_dir(Path(spec[len(LOCAL_DIR_PREFIX):]).expanduser(), spec)
    else:
        name, sep, source = spec.partition(":")
        if not sep or not source:
            raise BackboneUnavailable(
                f"Backbone '{spec}' needs a tag or a weights file after a colon, e.g. '{spec}:openai' "
                f"or '{spec}:/path/to/weights.pt'; '{DEMO}' works offline.")
        _check_architecture(name)
        if source == RANDOM_TAG:
            model, weights_id = _random_model(name), RANDOM_TAG
        elif _looks_like_path(source):
            model, weights_id = _model_from_file(name, Path(source).expanduser(), spec)
        else:
            model, weights_id = _model_from_tag(name, source, spec)
        tokenizer = open_clip.get_tokenizer(name)
    backbone = _finish(spec, model, tokenizer, weights_id, target)
    if spec == DEMO or spec.startswith(LOCAL_DIR_PREFIX):
        folder = DEMO_DIR if spec == DEMO else Path(spec[len(LOCAL_DIR_PREFIX):]).expanduser()
        backbone.zero_shot_templates = _templates_of(folder)
    return backbone


def load_backbone_or_demo(spec: str, device=None) -> tuple[Backbone, str | None]:
    """Load `spec`; where its weights cannot be had, load the demo model instead.

    Returns the backbone and, after a fallback, one plain sentence saying what happened.
    """
    try:
        return load_backbone(spec, device), None
    except BackboneUnavailable as error:
        if spec == DEMO:
            raise
        backbone = load_backbone(DEMO, device)
        return backbone, f"Using the offline demo model instead of '{spec}': {error}"


def _finish(spec, model, tokenizer, weights_id, device) -> Backbone:
    model.eval()
    model.requires_grad_(False)
    model.to(device)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    preprocessing = Preprocessing(
        size=int(size[0] if isinstance(size, (tuple, list)) else size),
        mean=tuple(cfg.get("mean", Preprocessing.mean)),
        std=tuple(cfg.get("std", Preprocessing.std)),
        interpolation=cfg.get("interpolation", "bicubic"),
        resize_mode=cfg.get("resize_mode", "shortest"),
    )
    return Backbone(spec, model, tokenizer, preprocessing, weights_id, device)


def _check_architecture(name: str) -> None:
    if open_clip.get_model_config(name) is None:
        close = [m for m in open_clip.list_models() if name.lower()[:5] in m.lower()][:8]
        hint = f" Similar names: {', '.join(close)}." if close else ""
        raise BackboneUnavailable(
            f"Unknown open_clip architecture '{name}'.{hint} "
            f"See open_clip.list_models(); '{DEMO}' works offline.")


def _looks_like_path(source: str) -> bool:
    return ("/" in source or "\\" in source or source.lower().endswith(WEIGHT_SUFFIXES)
            or os.path.exists(source))


def _random_model(name: str) -> nn.Module:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # open_clip warns that no weights were loaded: that is the point here
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)
            return open_clip.create_model(name, pretrained=None, device="cpu")
    finally:
        root.setLevel(level)


def _model_from_file(name: str, path: Path, spec: str) -> tuple[nn.Module, str]:
    if not path.is_file():
        raise BackboneUnavailable(
            f"Weights file not found: {path}. Check the path in '{spec}'; '{DEMO}' works offline.")
    try:
        model = open_clip.create_model(name, pretrained=str(path), device="cpu")
    except Exception as error:  # open_clip raises RuntimeError/KeyError/... for mismatched files
        raise BackboneUnavailable(
            f"Could not load {path} as '{name}' weights ({_first_line(error)}). Check that the file "
            f"belongs to this architecture (OpenAI weights need the '-quickgelu' variant of the name)."
        ) from error
    return model, "sha256:" + file_sha256(path)


def _model_from_tag(name: str, tag: str, spec: str) -> tuple[nn.Module, str]:
    tags = open_clip.list_pretrained_tags_by_model(name)
    if tag not in tags:
        raise BackboneUnavailable(
            f"'{tag}' is not a pretrained tag of {name}. Known tags: {', '.join(tags) or 'none'}. "
            f"For a local weights file use '{name}:/path/to/weights.pt'.")
    cfg = open_clip.get_pretrained_cfg(name, tag)
    cached = _cached_weights(cfg)
    preprocess = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in cfg}
    quick_gelu = bool(cfg.get("quick_gelu", False))
    if cached is not None:
        model = open_clip.create_model(name, pretrained=str(cached), device="cpu",
                                       force_quick_gelu=quick_gelu, force_preprocess_cfg=preprocess)
        return model, tag
    where = cfg.get("hf_hub") or cfg.get("url") or "?"
    # Weights trained with QuickGELU (OpenAI's) need the architecture variant that uses it.
    file_name = f"{name}-quickgelu" if quick_gelu and open_clip.get_model_config(f"{name}-quickgelu") else name
    if not _network_reachable(cfg):
        raise BackboneUnavailable(
            f"The weights of '{spec}' are not on this machine (looked in the Hugging Face cache "
            f"{_hf_cache_dir()} and ~/.cache/clip for {where}) and the internet cannot be reached. "
            f"Copy the weights file here and use '{file_name}:/path/to/weights', or use '{DEMO}', which works offline.")
    try:
        model = open_clip.create_model(name, pretrained=tag, device="cpu")
    except Exception as error:
        raise BackboneUnavailable(
            f"Downloading '{spec}' failed ({_first_line(error)}). Copy the weights file here and use "
            f"'{file_name}:/path/to/weights', or use '{DEMO}', which works offline.") from error
    return model, tag


def _cached_weights(cfg: dict) -> Path | None:
    """The weights of a pretrained tag if a previous download left them on this machine."""
    if cfg.get("file"):
        return Path(cfg["file"]) if Path(cfg["file"]).is_file() else None
    hub = cfg.get("hf_hub")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, filename = os.path.split(hub)  # "org/repo/" or "org/repo/file.bin"
            candidates = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            if filename.endswith((".bin", ".pth")):
                candidates.insert(0, filename[:-4] + ".safetensors")
            for candidate in candidates:
                found = try_to_load_from_cache(repo_id=repo, filename=candidate)
                if isinstance(found, str) and os.path.isfile(found):
                    return Path(found)
    url = cfg.get("url")
    if url:
        legacy = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        if legacy.is_file():
            return legacy
    return None


def _hf_cache_dir() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE
        return str(HF_HUB_CACHE)
    except ImportError:
        return "~/.cache/huggingface/hub"


def _network_reachable(cfg: dict) -> bool:
    """Whether the host serving these weights answers within a few seconds.

    Runs in a thread with a deadline because name resolution on an offline machine can hang.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    host = "huggingface.co" if cfg.get("hf_hub") else "openaipublic.azureedge.net"
    result = {"ok": False}

    def probe():
        try:
            with socket.create_connection((host, 443), timeout=NETWORK_PROBE_SECONDS):
                result["ok"] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(NETWORK_PROBE_SECONDS)
    return result["ok"]


def _load_local_dir(folder: Path, spec: str) -> tuple[nn.Module, object, str]:
    config = folder / "open_clip_config.json"
    weights = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + sorted(folder.glob("*.pt"))
    if not config.is_file() or not weights:
        what = "the bundled demo model" if spec == DEMO else f"'{spec}'"
        raise BackboneUnavailable(
            f"Cannot load {what}: {folder} needs open_clip_config.json and a weights file "
            f"(open_clip_model.safetensors).")
    try:
        json.loads(config.read_text())
        model = open_clip.create_model(LOCAL_DIR_PREFIX + str(folder), device="cpu")
        tokenizer = open_clip.get_tokenizer(LOCAL_DIR_PREFIX + str(folder))
    except Exception as error:
        raise BackboneUnavailable(f"Could not load {folder} ({_first_line(error)}).") from error
    return model, tokenizer, "sha256:" + file_sha256(weights[0])


TEMPLATES_FILE = "zero_shot_templates.json"


def _templates_of(folder: Path) -> tuple[str, ...] | None:
    """Templates from `folder`/zero_shot_templates.json: a JSON list of strings with one "{}"."""
    path = folder / TEMPLATES_FILE
    if not path.is_file():
        return None
    try:
        templates = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BackboneUnavailable(f"{path} is not valid JSON ({error}); fix or delete it.") from error
    if not (isinstance(templates, list) and templates and all(isinstance(t, str) and "{}" in t for t in templates)):
        raise BackboneUnavailable(f"{path} must be a JSON list of strings that each contain '{{}}' for the class name.")
    return tuple(templates)


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, remembered per (path, size, mtime) since weights files are large."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_of(path)
    return _SHA_CACHE[key]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
