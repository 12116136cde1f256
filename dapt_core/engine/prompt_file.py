"""The prompt file: a tuned classifier as one self-describing safetensors file.

The tensors (text context, visual prompt tokens, the tuned class embeddings) are safetensors;
a JSON header in the safetensors metadata under the key "dapt" records everything needed to
use and to audit them: backbone identity, class names in order, method and hyperparameters,
seed, preprocessing, metrics before and after, sha256 of every training image, creation time.
Nothing is pickled, so a file from anywhere can be opened safely.

Format 1.1 (format_version 1, format_minor 1) adds, for files tuned with enough held-out photos:
  header "calibration": temperature, reject_rate, unknown_threshold, novelty (the score in words),
      held_out_photos, measured (out-of-sample false-reject rate, coverage and set size), and the
      sorted novelty_scores and conformal_scores of the held-out photos (see dapt_core.deploy.calibration);
  tensor "novelty_class_means": (C, D) mean tuned feature of each class's training photos.
Format 1.2 (format_minor 2) adds, where one class means a good part:
  header "calibration" -> "pass_fail": the good class, the allowed escape rate, the pass threshold on the
      calibrated P(good) (conformal risk control), the held-out P(good) scores it rests on and the
      two-fold measured escapes and overkill (see dapt_core.deploy.pass_fail);
  header "metrics": good_class, chance, and pass_fail (escapes and overkill before and after tuning).
Later 1.2 files add, with the calibration:
  tensor "drift_reference_features": (N, D) the tuned image features of up to DRIFT_REFERENCE_MAX held-out
      photos, a seeded sample, stored in fp16: what `dapt drift` compares new photos with (a file without it
      is still read; drift then compares only the unknown share, see dapt_core.deploy.drift).
Minor versions only add: a 1.0 file still loads (it predicts without the unknown flag and sets),
and a reader of 1.0 reads a 1.1 file, ignoring what it does not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from .. import __version__, atomic
from ..errors import PromptFileError

FORMAT = "dapt-prompt-file"
FORMAT_VERSION = 1
FORMAT_MINOR = 2  # additions a reader of an older minor version may ignore
HEADER_KEY = "dapt"
SUFFIX = ".safetensors"
# The tensors a file may hold, and which ones a method needs.
TEXT_CTX, VISUAL_PROMPT, CLASS_EMBEDDINGS = "text_ctx", "visual_prompt", "class_embeddings"
NOVELTY_CLASS_MEANS = "novelty_class_means"  # format 1.1, with the calibration
DRIFT_REFERENCE = "drift_reference_features"  # with the calibration: held-out photos' features, fp16
DRIFT_REFERENCE_MAX = 200  # photos in that sample at most
KEPT_AS_FP16 = frozenset({DRIFT_REFERENCE})  # every other tensor is stored as fp32
MAX_FILE_BYTES = 512 * 1024 * 1024  # prompts are kilobytes to megabytes; refuse to read a huge file


@dataclass
class PromptFile:
    """A prompt file's header (a dict) and tensors, validated against each other."""

    header: dict
    tensors: dict[str, torch.Tensor]

    @property
    def classnames(self) -> list[str]:
        return list(self.header["classnames"])

    @property
    def method(self) -> str:
        return self.header["method"]

    @property
    def backbone_spec(self) -> str:
        return self.header["backbone"]["spec"]

    def check_backbone(self, backbone) -> None:
        """Raise PromptFileError if `backbone` is not the one these prompts were tuned on."""
        wanted = self.header["backbone"]
        have = backbone.describe()
        if wanted.get("embed_dim") != have["embed_dim"]:
            raise PromptFileError(
                f"This prompt file was tuned on '{wanted['spec']}' with {wanted.get('embed_dim')}-dimensional "
                f"embeddings, but '{have['spec']}' has {have['embed_dim']}. Load it with backbone '{wanted['spec']}'.")
        visual = self.tensors.get(VISUAL_PROMPT)
        if visual is not None and visual.shape[-1] != have["vision_width"]:
            raise PromptFileError(
                f"The visual prompt is {visual.shape[-1]} wide but '{have['spec']}' has a vision width of "
                f"{have['vision_width']}. Load it with backbone '{wanted['spec']}'.")
        text = self.tensors.get(TEXT_CTX)
        if text is not None and text.shape[-1] != have["text_width"]:
            raise PromptFileError(
                f"The text prompt is {text.shape[-1]} wide but '{have['spec']}' has a text width of "
                f"{have['text_width']}. Load it with backbone '{wanted['spec']}'.")
        if wanted.get("weights") != have["weights"]:
            raise PromptFileError(
                f"This prompt file was tuned on '{wanted['spec']}' (weights {wanted.get('weights')}), but the "
                f"backbone given is '{have['spec']}' (weights {have['weights']}). Prompts only work with the "
                f"exact weights they were tuned on: load '{wanted['spec']}'.")


def build_header(*, backbone, classnames: list[str], config, epochs: int, metrics: dict,
                 training_images: list[dict], extra: dict | None = None) -> dict:
    """The JSON header of a prompt file (see the module docstring for what it records)."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "format_minor": FORMAT_MINOR,
        "dapt_core_version": __version__,
        "backbone": backbone.describe(),
        "classnames": list(classnames),
        "method": config.method,
        "config": config.to_dict(),
        "augmentation": config.augmentation.describe(),  # the preset, in words
        "seed": config.seed,
        "epochs": epochs,
        "preprocessing": backbone.preprocessing.to_dict(),
        "logit_scale": float(backbone.model.logit_scale.exp()),
        "metrics": metrics,
        "training_images": training_images,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def to_bytes(header: dict, tensors: dict[str, torch.Tensor]) -> bytes:
    tensors = {name: (t.detach().half() if name in KEPT_AS_FP16 else t.detach().float()).cpu().contiguous()
               for name, t in tensors.items()}
    header = {**header, "tensors": sorted(tensors)}
    return save_safetensors_bytes(tensors, metadata={HEADER_KEY: json.dumps(header, allow_nan=True)})


def save(path: str | Path, header: dict, tensors: dict[str, torch.Tensor]) -> Path:
    """Write atomically, so an interrupted save never leaves a half-written prompt file behind."""
    return atomic.write_bytes(path, to_bytes(header, tensors))


def load(source: str | Path | bytes, name: str | None = None) -> PromptFile:
    """Read and validate a prompt file from a path or bytes (an upload); never unpickles."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "the uploaded file"
    else:
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise PromptFileError(f"Prompt file not found: {path}.")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise PromptFileError(f"{name} is {path.stat().st_size // 2**20} MB, far too large for a prompt file.")
        data = path.read_bytes()
    return from_bytes(data, name)


def from_bytes(data: bytes, name: str) -> PromptFile:
    header = _read_header(data, name)
    try:
        tensors = load_safetensors_bytes(data)
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise PromptFileError(f"{name} is damaged: its tensors cannot be read ({error}).") from error
    _validate(header, tensors, name)
    return PromptFile(header, tensors)


def _read_header(data: bytes, name: str) -> dict:
    # safetensors layout: 8-byte little-endian header length, then that many bytes of JSON.
    not_ours = (f"{name} is not a DAPT prompt file. Export one from DAPT Studio or with "
                f"'dapt tune ... --out FILE{SUFFIX}'.")
    if len(data) < 8:
        raise PromptFileError(not_ours)
    length = int.from_bytes(data[:8], "little")
    if length <= 0 or length > len(data) - 8:
        raise PromptFileError(not_ours)
    try:
        outer = json.loads(data[8:8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise PromptFileError(not_ours) from None
    metadata = outer.get("__metadata__") if isinstance(outer, dict) else None
    if not isinstance(metadata, dict) or HEADER_KEY not in metadata:
        raise PromptFileError(
            f"{name} is a safetensors file but not a DAPT prompt file (it has no DAPT header; is it model "
            f"weights?). Use it as a backbone instead, or pick the prompt file exported after tuning.")
    try:
        header = json.loads(metadata[HEADER_KEY])
    except json.JSONDecodeError as error:
        raise PromptFileError(f"{name} is damaged: its DAPT header is not valid JSON ({error}).") from error
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise PromptFileError(not_ours)
    return header


def _validate(header: dict, tensors: dict[str, torch.Tensor], name: str) -> None:
    version = header.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise PromptFileError(f"{name} has no valid format version; it is damaged.")
    if version > FORMAT_VERSION:
        raise PromptFileError(
            f"{name} uses prompt-file format {version}, made by a newer DAPT Studio "
            f"({header.get('dapt_core_version', '?')}); this one reads format {FORMAT_VERSION}. Upgrade DAPT Studio.")
    for key in ("backbone", "classnames", "method", "config", "preprocessing"):
        if key not in header:
            raise PromptFileError(f"{name} is damaged: its header has no '{key}'.")
    needed = [CLASS_EMBEDDINGS] + list(header.get("tensors", []))
    missing = sorted({t for t in needed if t not in tensors})
    if missing:
        raise PromptFileError(f"{name} is damaged: tensor(s) {', '.join(missing)} are missing.")
    classes = len(header["classnames"])
    embeddings = tensors[CLASS_EMBEDDINGS]
    if embeddings.ndim != 2 or embeddings.shape[0] != classes:
        raise PromptFileError(
            f"{name} is damaged: it names {classes} classes but holds embeddings of shape {tuple(embeddings.shape)}.")
    width = header["backbone"].get("embed_dim")
    if width is not None and embeddings.shape[1] != width:
        raise PromptFileError(
            f"{name} is damaged: class embeddings are {embeddings.shape[1]} wide, the header says {width}.")
    _validate_calibration(header, tensors, name)
    if not torch.isfinite(embeddings).all() or any(not torch.isfinite(t).all() for t in tensors.values()):
        raise PromptFileError(f"{name} holds non-finite values (NaN or infinity); tune again.")


def _validate_calibration(header: dict, tensors: dict[str, torch.Tensor], name: str) -> None:
    calibration = header.get("calibration")
    if calibration is None:
        return
    means = tensors.get(NOVELTY_CLASS_MEANS)
    embeddings = tensors[CLASS_EMBEDDINGS]
    if means is None or means.shape != embeddings.shape:
        raise PromptFileError(f"{name} is damaged: its calibration has no class means of shape "
                              f"{tuple(embeddings.shape)} ('{NOVELTY_CLASS_MEANS}').")
    if not isinstance(calibration, dict) or not all(isinstance(calibration.get(key), list) and calibration[key]
                                                    for key in ("novelty_scores", "conformal_scores")):
        raise PromptFileError(f"{name} is damaged: its calibration has no held-out scores.")
    if not isinstance(calibration.get("temperature"), (int, float)) or not calibration["temperature"] > 0:
        raise PromptFileError(f"{name} is damaged: its calibration temperature is not a positive number.")
    reference = tensors.get(DRIFT_REFERENCE)
    if reference is not None and (reference.ndim != 2 or reference.shape[1] != embeddings.shape[1]
                                  or not 0 < reference.shape[0] <= DRIFT_REFERENCE_MAX):
        raise PromptFileError(f"{name} is damaged: its drift reference ('{DRIFT_REFERENCE}') has shape "
                              f"{tuple(reference.shape)}, not (at most {DRIFT_REFERENCE_MAX}, {embeddings.shape[1]}).")
