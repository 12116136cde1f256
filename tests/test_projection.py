"""The shared UMAP map: one fit for before, after and text points; warm-up; caching; speed."""

from __future__ import annotations

import numpy as np
import pytest

from dapt_core.studio import projection as P


def clusters(n_per_class: int, classes: int, dim: int, spread: float, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    labels = np.repeat(np.arange(classes), n_per_class)
    points = centres[labels] + spread * rng.normal(size=(len(labels), dim))
    return points.astype(np.float32), labels, centres.astype(np.float32)


@pytest.fixture(scope="module")
def warm():
    warmup = P.start_warmup()
    assert warmup.wait(180), "the UMAP warm-up did not finish"
    assert warmup.state == "ready", warmup.error
    return warmup


def test_warmup_is_started_once_per_process(warm):
    assert P.start_warmup() is warm is P.warmup_status()
    assert warm.seconds is not None and warm.seconds > 0
    print(f"\nUMAP warm-up (first fit, numba compilation) took {warm.seconds:.1f} s in this process")


def test_one_fit_puts_before_and_after_in_one_frame(monkeypatch, warm):
    seen = []
    real = P._umap

    def spy(points):
        seen.append(points.shape)
        return real(points)

    monkeypatch.setattr(P, "_umap", spy)
    before, labels, centres = clusters(20, 3, 16, 3.0, seed=1)
    after, _, _ = clusters(20, 3, 16, 0.2, seed=1)
    projection = P.shared_projection(before, after, centres, centres * 2, labels=labels)
    assert seen == [(60 + 60, 16)]  # a single fit over every image; the texts are placed among them
    assert projection.before.shape == projection.after.shape == (60, 2)
    assert projection.text_before.shape == projection.text_after.shape == (3, 2)
    assert projection.method == "umap"

    def separation(coords):
        means = np.stack([coords[labels == c].mean(0) for c in range(3)])
        within = np.mean([np.linalg.norm(coords[labels == c] - means[c], axis=1).mean() for c in range(3)])
        between = np.mean([np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i + 1, 3)])
        return between / within

    # the tight 'after' clusters read as better separated than the noisy 'before' ones
    assert separation(projection.after) > separation(projection.before)


def _gapped_task(seed: int):
    """Three separable classes of images and class texts that sit across a modality gap: every
    text is its class direction plus one large shared offset that no image has (as in CLIP)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((3, 32))
    centres[:, :16] = rng.normal(size=(3, 16))
    labels = np.repeat(np.arange(3), 40)
    images = centres[labels].copy()
    images[:, :16] += 0.35 * rng.normal(size=(len(labels), 16))
    gap = np.zeros(32)
    gap[20] = 4.0
    texts = 0.5 * centres + gap
    return images.astype(np.float32), labels, texts.astype(np.float32)


@pytest.mark.parametrize("method", ["umap", "pca"])
def test_class_texts_sit_among_their_own_images_not_on_one_point(monkeypatch, warm, method):
    images, labels, texts = _gapped_task(seed=4)
    if method == "pca":
        monkeypatch.setattr(P, "MIN_UMAP_POINTS", 10_000)
    projection = P.shared_projection(images, images, texts, texts, labels=labels)
    assert projection.method == method
    for coords, stars in ((projection.before, projection.text_before), (projection.after, projection.text_after)):
        means = np.stack([coords[labels == c].mean(0) for c in range(3)])
        spread = np.mean([np.linalg.norm(coords[labels == c] - means[c], axis=1).mean() for c in range(3)])
        star_gaps = [np.linalg.norm(stars[i] - stars[j]) for i in range(3) for j in range(i + 1, 3)]
        assert min(star_gaps) > 2 * spread  # the stars are apart, as far apart as the clouds
        for c in range(3):
            distances = np.linalg.norm(means - stars[c], axis=1)
            assert distances.argmin() == c and distances[c] < 2 * spread  # each among its own images

    if method == "umap":  # what a joint fit over images and texts (the earlier map) made of the same data
        points = np.concatenate([images, images, texts, texts])
        joint = P._umap(points / np.linalg.norm(points, axis=1, keepdims=True))
        means = np.stack([joint[:120][labels == c].mean(0) for c in range(3)])
        spread = np.mean([np.linalg.norm(joint[:120][labels == c] - means[c], axis=1).mean() for c in range(3)])
        stars = joint[240:243]
        assert max(np.linalg.norm(stars[i] - stars[j]) for i in range(3) for j in range(i + 1, 3)) < spread
        assert min(np.linalg.norm(means[c] - stars[c]) for c in range(3)) > 2 * spread


def test_few_points_fall_back_to_pca():
    before, labels, centres = clusters(1, 2, 8, 0.5, seed=2)
    projection = P.shared_projection(before, before, centres, centres, labels=labels)
    assert projection.method == "pca"
    assert projection.before.shape == (2, 2)


def test_large_sets_are_subsampled_evenly_per_class():
    labels = np.repeat(np.arange(4), [100, 300, 50, 550])
    rows = P.subsample_rows(labels, limit=200)
    assert len(rows) <= 200 and np.all(np.diff(rows) > 0)
    counts = np.bincount(labels[rows], minlength=4)
    assert counts.tolist() == [20, 60, 10, 110]
    assert np.array_equal(P.subsample_rows(labels[:50], limit=200), np.arange(50))


def test_projection_roundtrips_and_is_cached_per_run(warm):
    before, labels, centres = clusters(10, 2, 8, 0.5, seed=3)

    class FakeRun:
        id = "run"
        stored = None
        fits = 0

        def load_projection(self, key):
            return self.stored if self.stored and self.stored.get("key") == key else None

        def save_projection(self, key, coordinates):
            self.stored = {"key": key, **coordinates}

        def embeddings(self):
            FakeRun.fits += 1
            return {"before_features": before, "after_features": before * 1.1, "before_text": centres,
                    "after_text": centres, "labels": labels}

    run = FakeRun()
    first = P.projection_for_run(run)
    second = P.projection_for_run(run)
    assert FakeRun.fits == 1
    assert np.allclose(first.before, second.before, atol=1e-4)
    assert np.array_equal(second.rows, np.arange(20))


def test_a_2000_point_map_keeps_every_image_and_separates_tight_classes(warm):
    """The Inspect page's largest map: 1,000 test images = 2,000 points before + after (+ text).
    Its speed is measured by benchmarks/inspect_map.py."""
    before, labels, centres = clusters(200, 5, 192, 2.0, seed=4)
    after, _, _ = clusters(200, 5, 192, 0.3, seed=4)
    projection = P.shared_projection(before, after, centres, centres * 1.1, labels=labels)
    assert projection.method == "umap" and len(projection.rows) == 1000
    assert projection.before.shape == projection.after.shape == (1000, 2)
    # tight classes after tuning: each image lies nearer its own class's centre on the map
    means = np.stack([projection.after[labels == c].mean(0) for c in range(5)])
    nearest = np.linalg.norm(projection.after[:, None] - means[None], axis=2).argmin(1)
    assert (nearest == labels).mean() > 0.95
