"""Export a prompt file as one ONNX graph plus a JSON sidecar, for a line PC without Python or torch.

The graph bakes in everything tuned: the visual prompt, the class embeddings, the logit scale, the
temperature and the novelty references. It takes RGB pixels in [0, 1], (N, 3, S, S), after
"shorter side to S, centre crop" (the normalisation is inside), and returns

    logits         (N, C)  the tuned model's logits, as `Classifier.logits` gives them
    probabilities  (N, C)  calibrated: softmax(logits / temperature)
    features       (N, D)  the prompted image features (L2-normalised)
    novelty        (N,)    the unknown score; "unknown" is novelty > the sidecar's unknown_threshold

The sidecar (same name, .json) holds the preprocessing, the class names in output order, the
unknown threshold with its reject rate and the calibration scores (so a line system can also
choose another rate or a coverage), and the held-out photos' features the drift check compares new
photos with (`dapt drift OUT.onnx DIR` on the line PC). onnx and onnxruntime are an optional extra ([onnx]).
"""

from __future__ import annotations

import base64
import copy
import tempfile
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__, atomic
from ..engine.inference import Classifier
from ..engine.prompt_file import DRIFT_REFERENCE
from ..engine.prompts import encode_image_with_prompts
from ..errors import DaptError
from .onnx_runner import INSTALL_HINT, SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path

OPSET = 18  # the dynamo exporter writes opset 18 and later
OUTPUTS = ("logits", "probabilities", "features", "novelty")


class ExportedGraph(nn.Module):
    """The classifier as one module with constants baked in, in the order the graph computes it."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        model = classifier.model
        prep = classifier.preprocessing
        # A copy on the CPU: exporting must not move the classifier's own (perhaps GPU) tower.
        self.visual = copy.deepcopy(model.backbone.visual).cpu().float()
        self.visual_prompt = None if model.visual_prompt is None else model.visual_prompt.detach().cpu().clone()
        self.deep = model.deep_visual
        self.register_buffer("mean", torch.tensor(prep.mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(prep.std).view(1, 3, 1, 1))
        with torch.no_grad():
            self.register_buffer("text", model.text_features().detach().float().cpu().clone())
        self.register_buffer("scale", model.logit_scale.detach().float().cpu().clone())
        calibration = classifier.calibration
        self.register_buffer("temperature", torch.tensor(calibration.temperature if calibration else 1.0))
        self.novelty = None if classifier.novelty is None else copy.deepcopy(classifier.novelty).cpu()

    def forward(self, pixels: torch.Tensor):
        x = (pixels - self.mean) / self.std
        if self.visual_prompt is None:
            features = F.normalize(self.visual(x).float(), dim=-1)
        else:
            features = F.normalize(
                encode_image_with_prompts(self.visual, x, self.visual_prompt, self.deep).float(), dim=-1)
        logits = self.scale * features @ self.text.t()
        probabilities = torch.softmax(logits / self.temperature, dim=-1)
        novelty = self.novelty.score(features) if self.novelty is not None else torch.zeros_like(logits[:, 0])
        return logits, probabilities, features, novelty


def export_onnx(classifier: Classifier, out: str | Path) -> tuple[Path, Path]:
    """Write OUT.onnx and OUT.json; returns their paths. The graph is checked with onnx.checker."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch's exporter needs it; checked here to say so plainly)
    except ImportError:
        raise DaptError(f"Exporting to ONNX needs the onnx and onnxscript packages: {INSTALL_HINT}.") from None
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise DaptError(f"The exported file must end in .onnx (got {out.name}).")
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = ExportedGraph(classifier).eval()
    size = classifier.preprocessing.size
    example = torch.rand(2, 3, size, size)
    tmp = out.with_name(out.name + ".partial")
    fastpath = torch.backends.mha.get_fastpath_enabled()
    # The fused attention kernel torch picks in inference mode has no ONNX form; the plain one does.
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            # torch's current (dynamo) exporter, which needs onnxscript on the exporting machine only; the
            # line PC runs the file with onnxruntime alone. The batch size stays free.
            torch.onnx.export(graph, (example,), str(tmp), input_names=["pixels"], output_names=list(OUTPUTS),
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                              opset_version=OPSET, dynamo=True, external_data=False, verbose=False)
        onnx.checker.check_model(str(tmp))
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    side = sidecar_path(out)
    atomic.write_json(side, sidecar(classifier))
    return out, side


def export_zip(classifier: Classifier, out: str | Path, stem: str = "model") -> Path:
    """STEM.onnx and STEM.json in one ZIP archive at `out` (for a download from the app), written whole or not
    at all. A file, not bytes: the graph holds the backbone's weights (about 340 MB for ViT-B/16), too much to
    keep in a server's memory until someone clicks Download."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="dapt-onnx-") as folder:
        onnx_path, side = export_onnx(classifier, Path(folder) / f"{stem}.onnx")
        try:
            with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(onnx_path, onnx_path.name)
                archive.write(side, side.name)
            partial.replace(out)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return out


def sidecar(classifier: Classifier) -> dict:
    header = classifier.file.header
    prep = classifier.preprocessing
    calibration = classifier.calibration
    return {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "dapt_core_version": __version__,
        "input": {"name": "pixels", "shape": ["batch", 3, prep.size, prep.size], "dtype": "float32",
                  "layout": "RGB, channels first, values in [0, 1]; the mean/std normalisation is inside the graph"},
        "preprocessing": {"size": prep.size, "interpolation": prep.interpolation,
                          "steps": ["decode to RGB", f"resize the shorter side to {prep.size} ({prep.interpolation})",
                                    f"centre-crop {prep.size} x {prep.size}", "divide by 255"],
                          "mean": list(prep.mean), "std": list(prep.std)},
        "outputs": {"logits": "tuned logits (N, C)", "probabilities": "calibrated probabilities (N, C)",
                    "features": "prompted image features (N, D)",
                    "novelty": "unknown score (N,); unknown when above unknown_threshold"},
        "classnames": classifier.classnames,
        "tiling": _tiling(classifier),
        "unknown_threshold": calibration.to_dict()["unknown_threshold"] if calibration else None,
        "reject_rate": calibration.reject_rate if calibration else None,
        # The line's decision in two numbers, for C#, C++ and Java readers: a part passes when
        # probabilities[good_class] > pass_threshold and novelty <= unknown_threshold (null: no pass/fail).
        **_pass_fail(calibration),
        "calibration": calibration.to_dict() if calibration else None,
        "drift_reference": drift_reference_entry(classifier.file),
        "prompt_file": {"backbone": header["backbone"], "method": header["method"], "created": header.get("created"),
                        "metrics": header.get("metrics", {})},
    }


def drift_reference_entry(file) -> dict | None:
    """The prompt file's drift reference (held-out photos' tuned features, fp16) as JSON: the little-endian
    float16 values row by row, base64 (about 270 kB for 200 photos of 512 values), or None without one."""
    tensor = file.tensors.get(DRIFT_REFERENCE)
    if tensor is None:
        return None
    values = tensor.to(torch.float16).contiguous().numpy().astype("<f2")
    return {"dtype": "float16", "shape": list(values.shape), "base64": base64.b64encode(values.tobytes()).decode(),
            "about": "features (N, D) of held-out photos, to compare new photos' features with (drift)"}


def _tiling(classifier: Classifier) -> dict:
    tiling = classifier.tiling
    return {**tiling.to_dict(), "good_class": classifier.good_class, "rule": (
        "off: the graph's outputs are the photo's. Otherwise cut the photo into square tiles (dapt_core/engine/"
        "tiling.py, Tiling.boxes: side = tile pixels, or 2 x the input size for auto, at most the shorter side; "
        "tiles spread evenly edge to edge with at least tile_overlap shared), give the graph the whole photo and "
        "each tile (each tile resized to the input size), take log_softmax of each row of logits, and pool: the "
        "photo's score for good_class is the lowest over the rows, every other class's the highest. Those scores "
        "are the photo's logits; its calibrated probabilities are softmax(logits / temperature); novelty is the "
        "whole photo's (row 0).")}


def _pass_fail(calibration) -> dict:
    point = calibration.operating_point if calibration is not None else None
    if point is None:
        return {"good_class": None, "pass_threshold": None, "escape_rate": None}
    cut = point.cut()
    # An operating point with too few defective photos lets nothing pass: a threshold of 1.0 says so to
    # a reader that compares with '>', since no probability exceeds it.
    return {"good_class": point.good_class, "pass_threshold": cut if cut != float("inf") else 1.0,
            "escape_rate": point.escape_rate}
