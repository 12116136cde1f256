"""How long the Inspect page's shared UMAP map takes for 2,000 points (1,000 test images before and
after tuning, plus class text embeddings), once umap-learn is warm.

Prints the time of our fit (neighbours found by one matrix product in dapt_core.studio.projection) and
the ratio against a reference fit in the same process that lets umap-learn search neighbours
itself, with the same settings otherwise. The first (compiling) fit is timed separately: that is
the cost the server's background warm-up takes off the user's path.

    python benchmarks/inspect_map.py [--images 1000] [--classes 5]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from dapt_core.studio import projection as P


def clusters(images: int, classes: int, dim: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim)).astype(np.float32)
    labels = np.arange(images) % classes
    return (centres[labels] + spread * rng.normal(size=(images, dim))).astype(np.float32), labels, centres


def reference_fit(points: np.ndarray) -> None:
    import umap
    reducer = umap.UMAP(n_components=2, n_neighbors=P.N_NEIGHBORS, min_dist=P.MIN_DIST, metric="euclidean",
                        n_epochs=P.N_EPOCHS, random_state=P.SEED, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer.fit_transform(points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--dim", type=int, default=192)
    args = parser.parse_args()

    started = time.perf_counter()
    warmup = P.start_warmup()
    warmup.wait()
    print(f"warm-up (first fit in this process, numba compiling): {time.perf_counter() - started:.1f} s")

    before, labels, centres = clusters(args.images, args.classes, args.dim, 2.0, seed=1)
    after, _, _ = clusters(args.images, args.classes, args.dim, 1.0, seed=1)
    started = time.perf_counter()
    projection = P.shared_projection(before, after, centres, centres * 1.1, labels=labels)
    ours = time.perf_counter() - started
    points = np.concatenate([before, after, centres, centres * 1.1])
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    started = time.perf_counter()
    reference_fit(points)
    reference = time.perf_counter() - started
    n_points = 2 * len(projection.rows) + 2 * args.classes
    print(f"shared map of {n_points} points: ours {ours:.2f} s, umap-learn's own neighbour search {reference:.2f} s")
    print(f"reference / ours = {reference / ours:.1f}x faster")


if __name__ == "__main__":
    main()
