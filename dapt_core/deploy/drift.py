"""Drift: are the new photos still like the photos the model was calibrated on?

New photos, in the order they were taken (file time) or named, are cut into windows (DEFAULT_WINDOW
photos each; a remainder under half a window joins the last one), and each window gets two tests
against the held-out photos of the tuning run, the photos the calibration was fitted on:

(a) the unknown share. The unknown threshold is the r-th smallest of the n held-out novelty scores
    (r = ceil((n + 1)(1 - reject rate)), dapt_core.deploy.calibration). For photos exchangeable with
    the held-out ones, the chance that one lies above that order statistic is itself random, Beta(n + 1 - r, r)
    (mean at most the reject rate), so the count above it in a window of m is beta-binomial(m, n + 1 - r, r).
    The one-sided p-value is that distribution's upper tail: the exact binomial test at the calibrated rate,
    widened for the threshold having been estimated from n photos. The plain binomial at the stated rate
    (`binomial_tail`, also given) ignores that and over-alarms when n is small; with n in the thousands
    the two agree.
(b) the features. A two-sample test between the window's tuned image features and the reference sample
    stored in the prompt file (up to 200 held-out photos' features, fp16): the maximum mean discrepancy
    (MMD, biased estimate) with a Gaussian kernel whose scale is the median squared distance between all
    the photos pooled (the median heuristic), and a permutation p-value (seeded). MMD rather than the
    distance between the two mean features: a change of spread (blur, a mix of materials) or a new small
    cluster (a new defect type in a fifth of the parts) can leave the mean nearly where it was; the kernel
    sees the whole distribution, at the cost of a kernel matrix of a few hundred photos (milliseconds).

Multiple tests, stated false alarms: a window is flagged when a test's p-value is under ALPHA / (the
number of tests run on it), so a window of photos like the held-out ones is flagged with probability at
most ALPHA (1 %); over W windows about W x ALPHA false flags are expected, and the report says so. The
overall verdict "drift" needs a p-value under ALPHA / (tests x W) (Bonferroni over all windows), so a
whole folder of photos like the held-out ones is called drifted with probability at most ALPHA. The
permutation count is raised where needed so that this level can be reached at all (a permutation
p-value is never under 1 / (permutations + 1)).

The feature test compares with the held-out photos as they were, their mix of classes included: a line
whose share of good parts differs much from the held-out photos' also shows as a difference. A prompt
file from before the reference sample (or a CSV from `dapt predict`, which holds no features) gets
test (a) only, and the report says so.

The statistics are numpy only; `encode_photos` runs a Classifier's `image_features` (torch) or, for an .onnx
export, its OnnxClassifier's (ONNX Runtime alone, as on a line PC).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .calibration import Calibration

DEFAULT_WINDOW = 50
MIN_WINDOW = 5
ALPHA = 0.01  # the chance that a window of photos like the held-out ones is flagged
DEFAULT_PERMUTATIONS = 200
MAX_PERMUTATIONS = 20000
ORDERS = ("name", "time")
CHECK_HINT = "check the lighting, the lens and its focus, the material, and whether a new kind of defect has appeared"


# ------------------------------------------------------------------------------ the two tests
def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact (log-space sum of the terms)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    terms = [_log_comb(n, x) + x * math.log(p) + (n - x) * math.log1p(-p) for x in range(k, n + 1)]
    return min(1.0, _exp_sum(terms))


def beta_binomial_tail(k: int, n: int, a: float, b: float) -> float:
    """P(X >= k) for X ~ Beta-binomial(n, a, b): a binomial whose rate is drawn from Beta(a, b)."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    base = _log_beta(a, b)
    terms = [_log_comb(n, x) + _log_beta(x + a, n - x + b) - base for x in range(k, n + 1)]
    return min(1.0, _exp_sum(terms))


def _log_comb(n: int, x: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(x + 1) - math.lgamma(n - x + 1)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _exp_sum(logs: list[float]) -> float:
    top = max(logs)
    return math.exp(top) * sum(math.exp(v - top) for v in logs)


@dataclass
class UnknownModel:
    """What the calibration says about the unknown share of photos like the held-out ones."""

    threshold: float  # novelty above this: unknown
    a: float  # the rate above the threshold is Beta(a, b)
    b: float
    stated_rate: float  # the file's reject rate

    @property
    def expected_share(self) -> float:
        return self.a / (self.a + self.b)

    def p_value(self, unknown: int, photos: int) -> float:
        return beta_binomial_tail(unknown, photos, self.a, self.b)

    @classmethod
    def of(cls, calibration: Calibration | None) -> UnknownModel | None:
        """None without a calibration, or where the threshold flags nothing (too few held-out photos)."""
        if calibration is None:
            return None
        n = len(calibration.novelty_scores)
        rank = math.ceil((n + 1) * (1.0 - calibration.reject_rate))
        if rank > n:
            return None
        return cls(calibration.unknown_threshold(), n + 1 - rank, rank, calibration.reject_rate)


def mmd_test(reference: np.ndarray, window: np.ndarray, *, permutations: int = DEFAULT_PERMUTATIONS,
             seed: int = 0) -> tuple[float, float]:
    """(MMD^2, permutation p-value) between two feature samples (rows), Gaussian kernel at the median
    heuristic: k(x, y) = exp(-|x - y|^2 / median of |u - v|^2 over all pooled pairs)."""
    pooled = np.vstack([reference, window]).astype(np.float64)
    n, total = len(reference), len(pooled)
    if n < 2 or len(window) < 2:
        raise DataError("A two-sample test needs at least two photos on each side.")
    squares = (pooled * pooled).sum(axis=1)
    distances = np.maximum(squares[:, None] + squares[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    scale = float(np.median(distances[np.triu_indices(total, 1)]))
    kernel = np.exp(-distances / (scale if scale > 0 else 1.0))
    side = np.zeros(total, dtype=bool)
    side[:n] = True
    observed = float(_mmd_of(kernel, side[None, :], n, total - n)[0])
    rng = np.random.default_rng(seed)
    beyond, done = 0, 0
    while done < permutations:
        chunk = min(500, permutations - done)
        sides = np.argsort(rng.random((chunk, total)), axis=1) < n  # each row: a random n of the pooled photos
        beyond += int((_mmd_of(kernel, sides, n, total - n) >= observed - 1e-12).sum())
        done += chunk
    return observed, (1 + beyond) / (1 + permutations)


def _mmd_of(kernel: np.ndarray, sides: np.ndarray, n: int, m: int) -> np.ndarray:
    """Biased MMD^2 for each row of `sides` (True: the first sample): w K w with w = 1/n, -1/m."""
    weights = np.where(sides, 1.0 / n, -1.0 / m)
    return np.einsum("pi,pi->p", weights @ kernel, weights)


# ------------------------------------------------------------------------------ windows and verdicts
@dataclass
class Window:
    index: int  # from 1
    first: str  # the first and last photo's names
    last: str
    photos: int
    unknown: int | None = None
    unknown_share: float | None = None
    expected_share: float | None = None
    p_unknown: float | None = None
    mmd: float | None = None
    p_features: float | None = None
    flagged: bool = False
    verdict: str = ""


@dataclass
class DriftReport:
    windows: list[Window]
    alpha: float
    tests: list[str]  # "unknown share", "features"
    drift: bool  # the overall verdict, at a false-alarm rate of `alpha` for the whole folder
    verdict: str
    notes: list[str] = field(default_factory=list)
    reference_photos: int = 0
    permutations: int = 0

    @property
    def flagged(self) -> int:
        return sum(w.flagged for w in self.windows)

    @property
    def expected_false_alarms(self) -> float:
        return self.alpha * len(self.windows)

    def to_dict(self) -> dict:
        return {"drift": self.drift, "verdict": self.verdict, "alpha_per_window": self.alpha,
                "windows_flagged": self.flagged, "expected_false_alarms": self.expected_false_alarms,
                "tests": self.tests, "reference_photos": self.reference_photos, "permutations": self.permutations,
                "notes": self.notes, "windows": [asdict(w) for w in self.windows]}


def window_bounds(count: int, size: int = DEFAULT_WINDOW) -> list[tuple[int, int]]:
    """[start, stop) of each window; a remainder under half a window joins the last one."""
    if size < MIN_WINDOW:
        raise ConfigError(f"A window needs at least {MIN_WINDOW} photos (--window {size}).")
    bounds = [(start, min(start + size, count)) for start in range(0, count, size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < size / 2:
        bounds[-2:] = [(bounds[-2][0], count)]
    return bounds


def assess(names: list[str], *, novelty: np.ndarray | None = None, features: np.ndarray | None = None,
           calibration: Calibration | None = None, reference: np.ndarray | None = None,
           window: int = DEFAULT_WINDOW, alpha: float = ALPHA, permutations: int = DEFAULT_PERMUTATIONS,
           seed: int = 0) -> DriftReport:
    """Compare photos (in order, named by `names`) with the held-out photos the file was calibrated on:
    their novelty scores (N,) against `calibration`, their tuned features (N, D) against `reference`."""
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"The false-alarm rate must be between 0 and 1, not {alpha}.")
    unknown_model = UnknownModel.of(calibration) if novelty is not None else None
    use_features = features is not None and reference is not None and len(reference) >= 2
    tests = (["unknown share"] if unknown_model else []) + (["features"] if use_features else [])
    notes = []
    if not tests:
        raise DataError("Nothing to compare: this prompt file has no calibration and no reference photos. Tune "
                        "again with at least 20 held-out photos.")
    if features is not None and not use_features:
        notes.append("This model file holds no reference features (it was tuned, or exported, before they "
                     "existed): only the unknown share was compared. Tune or export again to compare the photos "
                     "themselves too.")
    if unknown_model is None:
        notes.append("This prompt file's calibration cannot flag photos as unknown: only the features were compared.")
    if len(names) < MIN_WINDOW:
        raise DataError(f"{len(names)} photo(s): drift needs at least {MIN_WINDOW}.")
    bounds = window_bounds(len(names), window)
    level = alpha / len(tests)  # per test, per window
    overall = level / len(bounds)  # Bonferroni over the windows too
    if use_features:
        permutations = int(min(MAX_PERMUTATIONS, max(permutations, math.ceil(2.0 / overall))))
        reference = np.asarray(reference, dtype=np.float16).astype(np.float64)
        features = np.asarray(features, dtype=np.float16).astype(np.float64)  # the reference's precision
    windows, smallest = [], 1.0
    for index, (start, stop) in enumerate(bounds, start=1):
        w = Window(index, names[start], names[stop - 1], stop - start)
        p_values = []
        if unknown_model is not None:
            w.unknown = int((np.asarray(novelty[start:stop]) > unknown_model.threshold).sum())
            w.unknown_share = w.unknown / w.photos
            w.expected_share = unknown_model.expected_share
            w.p_unknown = unknown_model.p_value(w.unknown, w.photos)
            p_values.append(w.p_unknown)
        if use_features:
            w.mmd, w.p_features = mmd_test(reference, features[start:stop], permutations=permutations,
                                           seed=seed + index)
            p_values.append(w.p_features)
        w.flagged = min(p_values) < level
        w.verdict = window_verdict(w, level)
        smallest = min(smallest, min(p_values))
        windows.append(w)
    drift = smallest < overall
    report = DriftReport(windows, alpha, tests, drift, "", notes,
                         0 if not use_features else len(reference), permutations if use_features else 0)
    report.verdict = overall_verdict(report)
    return report


def window_verdict(w: Window, level: float) -> str:
    share = (f"{w.unknown_share:.0%} unknown against {w.expected_share:.0%} expected"
             if w.unknown_share is not None else None)
    unknown_high = w.p_unknown is not None and w.p_unknown < level
    features_differ = w.p_features is not None and w.p_features < level
    if unknown_high:
        return f"the photos look different from the calibration photos: {share}; {CHECK_HINT}"
    if features_differ:
        extra = f", though {share}" if share else ""
        return (f"the photos look different from the calibration photos (their features differ, p = "
                f"{w.p_features:.4f}){extra}; {CHECK_HINT}, and whether the mix of parts has changed")
    details = [d for d in (share, None if w.p_features is None else f"features p = {w.p_features:.2f}") if d]
    return "no sign of drift" + (f" ({'; '.join(details)})" if details else "")


def overall_verdict(report: DriftReport) -> str:
    total, flagged = len(report.windows), report.flagged
    chance = (f"{total} window(s) checked at {report.alpha:.0%} false alarms each, about "
              f"{report.expected_false_alarms:.2f} expected by chance")
    if report.drift:
        first = next(w for w in report.windows if w.flagged)
        return (f"Drift: {flagged} of {total} window(s) look different from the calibration photos, from window "
                f"{first.index} ({first.first}) on; this is beyond chance ({chance}). {first.verdict[0].upper()}"
                f"{first.verdict[1:]}.")
    if flagged:
        return (f"No clear sign of drift: {flagged} of {total} window(s) flagged, within what chance gives "
                f"({chance}). Watch the next photos.")
    return f"No sign of drift: the photos look like the calibration photos ({chance}, none flagged)."


# ------------------------------------------------------------------------------ photos in, report out
def ordered(paths: list[Path], order: str = "name") -> list[Path]:
    """Photos by name (the full path) or by file time (modification time, then name)."""
    if order not in ORDERS:
        raise ConfigError(f"--order must be one of {', '.join(ORDERS)}, not {order!r}.")
    if order == "time":
        return sorted(paths, key=lambda p: (os.stat(p).st_mtime, str(p)))
    return sorted(paths, key=str)


def encode_photos(classifier, paths: list[Path], *, batch_size: int = 32,
                  on_progress: Callable[[int, int], None] | None = None):
    """`classifier.image_features` of photo files, in batches (a prompt file's Classifier or an .onnx export's
    OnnxClassifier): features (N, D), novelty (N,) or None, the names of the photos that loaded, and the skipped
    ones."""
    from .batch_predict import predict_paths

    def rows_of(images: list) -> list:
        features, novelty = classifier.image_features(images)
        return [(features[i], None if novelty is None else float(novelty[i])) for i in range(len(images))]

    result = predict_paths(rows_of, paths, batch_size=batch_size, on_progress=on_progress)
    names = [name for name, _ in result.rows]
    features = np.stack([f for _, (f, _) in result.rows]) if result.rows else None
    novelty = None if not result.rows or result.rows[0][1][1] is None else np.array(
        [n for _, (_, n) in result.rows])
    return features, novelty, names, result.skipped


def reference_of(file) -> np.ndarray | None:
    """The prompt file's reference features (dapt_core.engine.prompt_file.DRIFT_REFERENCE), or None (an .onnx
    export carries its copy as OnnxClassifier.drift_reference)."""
    from ..engine.prompt_file import DRIFT_REFERENCE

    tensor = file.tensors.get(DRIFT_REFERENCE)
    return None if tensor is None else tensor.float().numpy()


def read_predict_csv(path: str | Path, order: str = "name") -> tuple[list[str], np.ndarray]:
    """The photos and novelty scores of a `dapt predict --csv` file, in `order` (file time where the
    photos are still there, else the CSV's order)."""
    with Path(path).open(newline="", encoding="utf-8") as stream:
        rows = [row for row in csv.DictReader(stream)]
    if not rows or "novelty" not in rows[0] or "path" not in rows[0]:
        raise DataError(f"{path} is not a CSV written by `dapt predict --csv` (it needs path and novelty columns).")
    rows = [row for row in rows if row["novelty"] not in ("", None)]
    if not rows:
        raise DataError(f"{path} has no novelty scores: the prompt file that wrote it had no calibration.")
    if order == "time" and all(Path(row["path"]).is_file() for row in rows):
        rows.sort(key=lambda row: (os.stat(row["path"]).st_mtime, row["path"]))
    elif order == "name":
        rows.sort(key=lambda row: row["path"])
    return [row["path"] for row in rows], np.array([float(row["novelty"]) for row in rows])


def check(file, photos: str | Path | list, *, order: str = "name", window: int = DEFAULT_WINDOW,
          classifier_for: Callable | None = None, batch_size: int = 32,
          on_progress: Callable[[int, int], None] | None = None) -> tuple[DriftReport, list]:
    """`dapt drift` and the app's drift check in one path: `file` a loaded prompt file
    (dapt_core.engine.prompt_file) or an .onnx export (onnx_runner.OnnxClassifier, which encodes the photos
    itself), `photos` a `dapt predict --csv` file (the unknown share only: a CSV holds no features) or a list
    of photo files. `classifier_for(file)` makes the Classifier that encodes photos for a prompt file
    (default: the file's own backbone, loaded). Returns the report and the photos that could not be read."""
    from .onnx_runner import OnnxClassifier

    exported = isinstance(file, OnnxClassifier)  # no torch on that path: a line PC runs the .onnx file alone
    if exported:
        calibration, classifier_for = file.calibration, lambda onnx: onnx
    else:
        calibration = Calibration.from_dict(file.header["calibration"]) if file.header.get("calibration") else None
    features, reference, skipped, notes = None, None, [], []
    if not isinstance(photos, list | tuple):
        names, novelty = read_predict_csv(photos, order)
        notes.append("A CSV holds no image features: only the unknown share was compared.")
    else:
        paths = ordered([Path(p) for p in photos], order)
        if not paths:
            raise DataError("No photos to compare.")
        if classifier_for is None:
            from ..engine.inference import Classifier

            classifier = Classifier.from_prompt_file(file)
        else:
            classifier = classifier_for(file)
        features, novelty, names, skipped = encode_photos(classifier, paths, batch_size=batch_size,
                                                          on_progress=on_progress)
        reference = file.drift_reference if exported else reference_of(file)
    report = assess(names, novelty=novelty, features=features, calibration=calibration, reference=reference,
                    window=window)
    report.notes[:0] = notes
    return report, skipped


# ------------------------------------------------------------------------------ the chart
def chart_figure(report: DriftReport):
    """A plotly figure: the unknown share per window against the expected share, and each window's
    feature-test p-value; flagged windows in red."""
    from plotly.subplots import make_subplots

    x = [w.index for w in report.windows]
    colours = ["#d62728" if w.flagged else "#1f77b4" for w in report.windows]
    hover = [f"{w.first} .. {w.last}<br>{w.verdict}" for w in report.windows]
    rows = 2 if "features" in report.tests and "unknown share" in report.tests else 1
    figure = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    row = 1
    if "unknown share" in report.tests:
        figure.add_bar(x=x, y=[w.unknown_share for w in report.windows], marker_color=colours, hovertext=hover,
                       name="unknown share", row=row, col=1)
        figure.add_scatter(x=x, y=[w.expected_share for w in report.windows], mode="lines",
                           line={"dash": "dash", "color": "black"}, name="expected", row=row, col=1)
        figure.update_yaxes(title_text="unknown share", tickformat=".0%", row=row, col=1)
        row += 1
    if "features" in report.tests:
        figure.add_scatter(x=x, y=[w.p_features for w in report.windows], mode="markers+lines",
                           marker={"color": colours, "size": 9}, hovertext=hover, name="features p-value",
                           row=row, col=1)
        figure.add_hline(y=report.alpha / len(report.tests), line_dash="dot", line_color="#d62728", row=row, col=1)
        figure.update_yaxes(title_text="features p-value", type="log", row=row, col=1)
    figure.update_xaxes(title_text="window", row=rows, col=1)
    figure.update_layout(title=report.verdict[:120], showlegend=True, height=260 * rows + 120)
    return figure


def write_chart(report: DriftReport, out: str | Path) -> Path:
    """The chart as a self-contained HTML page (.html) or a plain bar chart (.png, drawn with Pillow)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".html":
        chart_figure(report).write_html(out, include_plotlyjs=True)
    elif out.suffix.lower() == ".png":
        _png_chart(report).save(out)
    else:
        raise ConfigError(f"--chart writes .html or .png, not {out.name}.")
    return out


def _png_chart(report: DriftReport):
    from PIL import Image, ImageDraw

    width, height, left, bottom, top = 800, 360, 60, 40, 40
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    count = len(report.windows)
    use_unknown = "unknown share" in report.tests
    # Bars: the unknown share (or, without it, -log10 of the feature p-value), flagged windows in red.
    values = [(w.unknown_share if use_unknown else -math.log10(max(w.p_features, 1e-12))) for w in report.windows]
    expected = report.windows[0].expected_share if use_unknown else -math.log10(report.alpha / len(report.tests))
    ceiling = max(values + [expected * 2, 1e-9])
    plot_w, plot_h = width - left - 20, height - top - bottom
    step = plot_w / count

    def y_of(value):
        return top + plot_h * (1 - value / ceiling)

    for i, (w, value) in enumerate(zip(report.windows, values)):
        x0 = left + i * step + step * 0.15
        draw.rectangle([x0, y_of(value), x0 + step * 0.7, top + plot_h], fill="#d62728" if w.flagged else "#1f77b4")
    draw.line([left, y_of(expected), width - 20, y_of(expected)], fill="black", width=2)
    draw.line([left, top, left, top + plot_h, width - 20, top + plot_h], fill="black")
    label = "unknown share per window (line: expected)" if use_unknown else "-log10 features p (line: alarm level)"
    draw.text((left, 10), f"{label}; {report.flagged} of {count} flagged", fill="black")
    draw.text((4, top - 6), f"{ceiling:.0%}" if use_unknown else f"{ceiling:.1f}", fill="black")
    draw.text((left, height - bottom + 10), f"windows 1..{count}", fill="black")
    return image
