"""The highres demo task: 1024-px photos with one small defect each, whose place is recorded.

Renders a handful of photos through render_demo_image_with_box and writes a shrunken copy of the task
(1-2 photos per class); the whole task (280 photos, ~35 s on two cores) is not written here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from dapt_core import cli
from dapt_core.demo import demo_task
from dapt_core.demo.demo_task import (
    BOX_MARGIN,
    BOXES_FILE,
    CLASSES,
    render_demo_image,
    render_demo_image_with_box,
    task_counts,
)

SIZE = 1024
DEFECTIVE = [c for c in CLASSES if c != "no defect"]


def _tree_digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def small_highres(monkeypatch):
    """The highres task with 1 training and 2 test photos per class (the real one has 16 and 40)."""
    monkeypatch.setitem(demo_task.TASKS, "highres",
                        dataclasses.replace(demo_task.TASKS["highres"], train_per_class=1, test_per_class=2))


def test_the_task_has_the_demo_classes_and_16_training_and_40_test_photos_per_class():
    assert demo_task.TASKS["highres"].classes == CLASSES
    assert task_counts("highres") == {"train": 16, "test": 40}
    assert task_counts("carbon-fibre") == {"train": 16, "test": 200}  # the other tasks keep theirs


@pytest.mark.parametrize("class_name", DEFECTIVE)
def test_a_defective_photo_has_one_small_defect_where_its_box_says(class_name):
    """Rendered again without its defect, the photo changes inside the box only, and up to each of
    the box's edges: the box is the defect's (pixels changed by more than 0.02, 5 grey levels, in the
    lit photo; rounding adds one level)."""
    for index in (0, 1):
        img, box = render_demo_image_with_box(0, "test", class_name, index, "highres")
        assert img.shape == (SIZE, SIZE, 3) and img.dtype == np.uint8
        x0, y0, x1, y1 = box
        assert BOX_MARGIN <= x0 < x1 <= SIZE - BOX_MARGIN and BOX_MARGIN <= y0 < y1 <= SIZE - BOX_MARGIN
        assert 10 <= max(x1 - x0, y1 - y0) <= 40
        clean, clean_box = render_demo_image_with_box(0, "test", class_name, index, "highres", with_defect=False)
        assert clean_box == box
        diff = np.abs(img.astype(int) - clean.astype(int)).max(axis=2)
        inside = diff[y0:y1, x0:x1]
        outside = diff.copy()
        outside[y0:y1, x0:x1] = 0
        assert outside.max() <= 6, (class_name, index)
        for edge in (inside[0], inside[-1], inside[:, 0], inside[:, -1]):
            assert edge.max() >= 4, (class_name, index, box)
        assert inside.max() >= 15  # the defect itself is clearly there


def test_a_good_photo_has_no_box_and_the_whole_photo_shrinks_the_defect_away():
    img, box = render_demo_image_with_box(0, "test", "no defect", 0, "highres")
    assert box is None and img.shape == (SIZE, SIZE, 3)
    # a defect measures at most 40 px: shrunk to the model's 128 px (8x) it is at most 5 px across
    _, box = render_demo_image_with_box(0, "test", "scratch", 0, "highres")
    assert max(box[2] - box[0], box[3] - box[1]) / (SIZE / 128) <= 5


def test_the_same_seed_gives_the_same_photo_and_another_seed_another():
    a, box_a = render_demo_image_with_box(0, "train", "crack", 3, "highres")
    b, box_b = render_demo_image_with_box(0, "train", "crack", 3, "highres")
    assert np.array_equal(a, b) and box_a == box_b
    assert np.array_equal(render_demo_image(0, "train", "crack", 3, "highres"), a)
    c, box_c = render_demo_image_with_box(1, "train", "crack", 3, "highres")
    assert not np.array_equal(a, c) and box_c != box_a


def test_the_other_tasks_record_no_boxes():
    img, box = render_demo_image_with_box(0, "test", "scratch", 0)
    assert box is None and np.array_equal(img, render_demo_image(0, "test", "scratch", 0))
    with pytest.raises(ValueError, match="highres"):
        render_demo_image_with_box(0, "test", "scratch", 0, with_defect=False)


def test_demo_data_writes_1024_px_jpegs_and_a_box_for_every_defective_photo(small_highres, tmp_path, capsys):
    out = tmp_path / "hr"
    assert cli.main(["demo-data", str(out), "--task", "highres"]) == 0  # `dapt demo-data DIR --task highres`
    summary = json.loads(capsys.readouterr().out)
    assert (summary["train_per_class"], summary["test_per_class"]) == (1, 2)
    assert summary["image_size"] == SIZE and summary["file_format"] == "jpeg"
    photos = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jpg"))
    assert len(photos) == len(CLASSES) * 3 and not list(out.rglob("*.png"))
    for split, n in (("train", 1), ("test", 2)):
        for c in CLASSES:
            assert sorted(p.name for p in (out / split / c).iterdir()) == [f"{i:03d}.jpg" for i in range(n)]
    with Image.open(out / "test" / "dent" / "001.jpg") as im:
        assert im.format == "JPEG" and im.mode == "RGB" and im.size == (SIZE, SIZE)

    boxes = json.loads((out / BOXES_FILE).read_text(encoding="utf-8"))
    assert summary["defect_boxes"] == str(out / BOXES_FILE)
    assert boxes["format"] == 1 and boxes["image_size"] == [SIZE, SIZE]
    assert sorted(boxes["boxes"]) == [p for p in photos if "/no defect/" not in p]
    for key, box in boxes["boxes"].items():
        split, c, name = key.split("/")
        assert box == render_demo_image_with_box(0, split, c, int(name[:3]), "highres")[1]

    # JPEG quality 92 keeps the defect: in the 256-px tile around its box it stands out of the JPEG's noise
    for key in ("test/scratch/000.jpg", "test/dent/001.jpg"):
        split, c, name = key.split("/")
        x0, y0, x1, y1 = boxes["boxes"][key]
        clean = render_demo_image_with_box(0, split, c, int(name[:3]), "highres", with_defect=False)[0]
        with Image.open(out / key) as im:
            diff = np.abs(np.asarray(im, dtype=float) - clean).max(axis=2)
        tx, ty = (min(max((a + b) // 2 - 128, 0), SIZE - 256) for a, b in ((x0, x1), (y0, y1)))
        around = np.zeros((SIZE, SIZE), bool)
        around[ty:ty + 256, tx:tx + 256] = True
        around[y0:y1, x0:x1] = False
        # the JPEG's errors average ~4 grey levels; the defect's changes in its box, well above that
        assert diff[y0:y1, x0:x1].mean() > 1.5 * diff[around].mean(), key
    # the same bytes when written again
    demo_task.write_demo_task(tmp_path / "again", seed=0, task="highres")
    assert _tree_digest(tmp_path / "again") == _tree_digest(out)
