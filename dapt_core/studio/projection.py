"""A 2-D map of the embedding space before and after tuning, from ONE shared UMAP fit.

Two separate fits would place the same image at unrelated positions, and a reader would compare
two arbitrary pictures. Fitting once on the union of the test images' zero-shot embeddings and
their tuned embeddings puts every image in one coordinate frame: where a point moved is where its
embedding moved, relative to everything else.

The class texts are not part of the fit. CLIP's text embeddings all lie in one narrow cone far
from every image (the "modality gap"), so a joint fit puts every class text on one point, which
says nothing. What matters to the classifier is only how a text compares with the images: an
image is given the class whose text it is most similar to, and the gap adds about the same to
every image-text similarity. So each text is drawn where the images that match it best are: at
the average position of the images, weighted by softmax(CLIP's logit scale x cosine similarity)
(`place_texts`). A star inside its class's cloud: the description picks out its own pictures; a
star among another class's pictures: those match the description better; a star between clouds:
the description cannot tell them apart.

umap-learn compiles its numba kernels on the first fit in every process (13-14 s on a 2-core
CPU); `start_warmup()` does a throw-away fit in a background thread when the server starts, so a
user's first map costs a normal fit (about a second for 2,000 points).

Settings are fixed (seeded, single-threaded) so the same run always gives the same picture; the
result is cached in the run folder by `projection_for_run`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

PROJECTION_VERSION = 3
N_NEIGHBORS = 15
MIN_DIST = 0.1
N_EPOCHS = 200
SEED = 0
# More test images than this are subsampled (evenly per class, deterministically) for the map:
# 1,000 images = 2,000 points before + after, which keeps a fit near a second on a laptop CPU.
MAX_IMAGES = 1000
# Below this many points UMAP's graph is degenerate; a PCA plane is drawn instead.
MIN_UMAP_POINTS = 12
# CLIP's logit scale (a temperature of 1/100 on cosine similarities): the weights with which a
# class text is placed among the images are the probabilities CLIP itself would give them.
TEXT_PLACEMENT_SCALE = 100.0


@dataclass
class Projection:
    """2-D coordinates. Row i of `before`/`after` is test image rows[i]; text rows follow classes."""

    before: np.ndarray  # (N, 2)
    after: np.ndarray  # (N, 2)
    text_before: np.ndarray  # (C, 2)
    text_after: np.ndarray  # (C, 2)
    rows: np.ndarray  # (N,) indices into the run's test images
    method: str  # "umap" or "pca"
    seconds: float

    def to_dict(self) -> dict:
        return {"before": self.before.round(5).tolist(), "after": self.after.round(5).tolist(),
                "text_before": self.text_before.round(5).tolist(), "text_after": self.text_after.round(5).tolist(),
                "rows": self.rows.tolist(), "method": self.method, "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, data: dict) -> Projection:
        def arr(key, width=2):
            return np.asarray(data[key], dtype=np.float32).reshape(-1, width)

        return cls(arr("before"), arr("after"), arr("text_before"), arr("text_after"),
                   np.asarray(data["rows"], dtype=np.int64), data.get("method", "umap"), float(data.get("seconds", 0)))


def settings_key() -> dict:
    """Identifies how a cached map was made; a change of settings makes new maps."""
    return {"version": PROJECTION_VERSION, "n_neighbors": N_NEIGHBORS, "min_dist": MIN_DIST, "seed": SEED,
            "n_epochs": N_EPOCHS, "max_images": MAX_IMAGES}


def subsample_rows(labels: np.ndarray, limit: int = MAX_IMAGES, seed: int = SEED) -> np.ndarray:
    """At most `limit` row indices, the same share of every class, sorted; all rows if fewer."""
    labels = np.asarray(labels)
    n = len(labels)
    if n <= limit:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        take = max(1, round(limit * len(members) / n))
        keep.append(rng.choice(members, size=min(take, len(members)), replace=False))
    return np.sort(np.concatenate(keep))[:limit]


def shared_projection(before: np.ndarray, after: np.ndarray, text_before: np.ndarray, text_after: np.ndarray,
                      *, labels: np.ndarray | None = None, max_images: int = MAX_IMAGES) -> Projection:
    """Fit one 2-D map on image embeddings before and after tuning (all (rows, D)) and place both
    sets of class text embeddings among them; see the module docstring for why."""
    started = time.perf_counter()
    rows = subsample_rows(labels if labels is not None else np.zeros(len(before)), max_images)
    before, after = _unit(before)[rows], _unit(after)[rows]
    points = np.concatenate([before, after])
    if len(points) < MIN_UMAP_POINTS:
        coords, method = _pca(points), "pca"
    else:
        coords, method = _umap(points), "umap"
    n = len(before)
    return Projection(coords[:n], coords[n:], place_texts(text_before, before, coords[:n]),
                      place_texts(text_after, after, coords[n:]), rows, method, time.perf_counter() - started)


def place_texts(texts: np.ndarray, images: np.ndarray, image_coords: np.ndarray) -> np.ndarray:
    """Each text's 2-D position: the average of `image_coords`, weighted by the softmax over the
    images of TEXT_PLACEMENT_SCALE x the cosine similarity of the text to each image."""
    similarity = _unit(texts) @ _unit(images).T  # (C, N)
    logits = TEXT_PLACEMENT_SCALE * (similarity - similarity.max(axis=1, keepdims=True))
    weights = np.exp(logits)
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights @ np.asarray(image_coords, dtype=np.float64)).astype(np.float32)


def _unit(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _umap(points: np.ndarray) -> np.ndarray:
    import warnings

    import umap

    # The nearest neighbours are found here with one matrix product and a partial sort: for
    # fewer than 4,096 points umap-learn would otherwise call its metric once per pair through
    # scikit-learn (four million Python calls for 2,000 points, ~10 s), or fully sort every row
    # of a distance matrix (~0.4 s). On unit vectors the euclidean distance orders neighbours
    # exactly as cosine does. A fixed random_state makes the picture reproducible (and keeps the
    # optimiser on one thread, leaving a core to the server); N_EPOCHS is umap's own default for
    # large data, enough for a few thousand points.
    k = min(N_NEIGHBORS, len(points) - 1)
    gram = points @ points.T
    distances = np.sqrt(np.clip(2.0 - 2.0 * gram, 0.0, None)).astype(np.float32)
    np.fill_diagonal(distances, 0.0)
    # the k nearest, the point itself (distance 0) first, as umap's own search returns them
    nearest = np.argpartition(distances, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(distances, nearest, axis=1).argsort(axis=1, kind="stable")
    nearest = np.take_along_axis(nearest, order, axis=1)
    knn_dists = np.take_along_axis(distances, nearest, axis=1).astype(np.float32)
    reducer = umap.UMAP(n_components=2, n_neighbors=k, min_dist=MIN_DIST, metric="euclidean", n_epochs=N_EPOCHS,
                        random_state=SEED, n_jobs=1, precomputed_knn=(nearest.astype(np.int32), knn_dists, None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notices about n_jobs/random_state and the missing search index
        return np.asarray(reducer.fit_transform(points), dtype=np.float32)


def _pca(points: np.ndarray) -> np.ndarray:
    centred = points - points.mean(axis=0, keepdims=True)
    if len(points) < 2:
        return np.zeros((len(points), 2), dtype=np.float32)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    coords = centred @ vt[:2].T
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords.astype(np.float32)


def projection_for_run(run) -> Projection:
    """The map of a saved run (dapt_core.studio.workspace.SavedRun): cached in the run folder, made once."""
    key = settings_key()
    cached = run.load_projection(key)
    if cached is not None:
        try:
            return Projection.from_dict(cached)
        except (KeyError, ValueError, TypeError):
            log.warning("cached projection of run %s is unreadable; making it again", run.id)
    emb = run.embeddings()
    projection = shared_projection(emb["before_features"], emb["after_features"], emb["before_text"],
                                   emb["after_text"], labels=emb["labels"])
    run.save_projection(key, projection.to_dict())
    return projection


# ---------------------------------------------------------------------------------- warm-up


class Warmup:
    """The background warm-up fit. state: 'idle', 'running', 'ready' or 'failed'."""

    def __init__(self):
        self.state = "idle"
        self.seconds: float | None = None
        self.error: str | None = None
        self.started: float | None = None
        self._thread: threading.Thread | None = None
        self._done = threading.Event()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            rng = np.random.default_rng(0)
            # Same dtype, metric and code path (exact neighbours, spectral init) as a real map of
            # a few thousand points, so that every kernel a real fit needs gets compiled.
            centres = rng.normal(size=(5, 32))
            sample = np.concatenate([c + 0.1 * rng.normal(size=(60, 32)) for c in centres]).astype(np.float32)
            shared_projection(sample[:150], sample[150:], sample[:5], sample[5:10])
            self.seconds = time.perf_counter() - self.started
            self.state = "ready"
            log.info("UMAP warm-up done in %.1f s", self.seconds)
        except Exception as error:  # without umap the Inspect page says so; the app still works
            self.error = f"{type(error).__name__}: {error}"
            self.state = "failed"
            log.exception("UMAP warm-up failed")
        finally:
            self._done.set()


_WARMUP = Warmup()
_WARMUP_LOCK = threading.Lock()


def start_warmup() -> Warmup:
    """Start the warm-up fit once per process (later calls return the same Warmup)."""
    with _WARMUP_LOCK:
        if _WARMUP.state == "idle":
            _WARMUP.state = "running"
            _WARMUP.started = time.perf_counter()
            _WARMUP._thread = threading.Thread(target=_WARMUP._run, name="dapt-umap-warmup", daemon=True)
            _WARMUP._thread.start()
    return _WARMUP


def warmup_status() -> Warmup:
    return _WARMUP
