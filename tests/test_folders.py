"""Folders of class sub-folders: what is found, what is skipped and why, and how shots are drawn."""

from __future__ import annotations

import io
import os
import unicodedata
from pathlib import Path

import pytest
from PIL import Image

from dapt_core.data.folders import (
    LAYOUT_CLASSES,
    LAYOUT_TRAIN_TEST,
    PART_ALL,
    class_prompt_name,
    load_split,
    scan_folder,
    split_from_files,
)
from dapt_core.data.records import Split
from dapt_core.errors import ConfigError, DataError


def photo(path: Path, colour=(120, 80, 40)) -> Path:
    """Write a small real image at `path` (format from its suffix), creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 8), colour).save(path)
    return path


def photos(folder: Path, count: int, prefix: str = "img") -> list[Path]:
    return [photo(folder / f"{prefix}_{index:02d}.png") for index in range(count)]


def names(paths) -> list[str]:
    return [Path(p).name for p in paths]


def train_paths(split: Split, label: int) -> list[Path]:
    return [item.path for item in split.train if item.label == label]


def reasons(scan_or_split) -> dict[str, str]:
    return {Path(item.path).name: item.reason for item in scan_or_split.skipped}


@pytest.fixture
def two_classes(tmp_path) -> Path:
    photos(tmp_path / "task" / "no_defect", 10)
    photos(tmp_path / "task" / "scratch", 6)
    return tmp_path / "task"


# ----------------------------------------------------------------------------- scanning


def test_class_folders_layout_is_found_with_sorted_classes_and_paths(two_classes):
    scan = scan_folder(two_classes)

    assert scan.layout == LAYOUT_CLASSES
    assert list(scan.classes) == ["no_defect", "scratch"]
    assert names(scan.classes["scratch"]) == [f"img_{i:02d}.png" for i in range(6)]
    assert scan.parts == {PART_ALL: scan.classes}
    assert scan.skipped == []


def test_train_test_layout_keeps_its_parts(tmp_path):
    photos(tmp_path / "train" / "ok", 3)
    photos(tmp_path / "train" / "dent", 4)
    photos(tmp_path / "test" / "ok", 2)
    photos(tmp_path / "test" / "dent", 1)
    photos(tmp_path / "val" / "ok", 1)

    scan = scan_folder(tmp_path)

    assert scan.layout == LAYOUT_TRAIN_TEST
    assert {
        part: {cls: len(paths) for cls, paths in by_class.items()}
        for part, by_class in scan.parts.items()
    } == {
        "train": {"dent": 4, "ok": 3},
        "test": {"dent": 1, "ok": 2},
        "val": {"ok": 1},
    }
    assert {cls: len(paths) for cls, paths in scan.classes.items()} == {"dent": 5, "ok": 6}


def test_part_folder_names_are_matched_in_any_case(tmp_path):
    photos(tmp_path / "Train" / "ok", 1)
    photos(tmp_path / "TEST" / "ok", 1)
    assert set(scan_folder(tmp_path).parts) == {"train", "test"}


def test_broken_files_are_listed_with_reasons_and_good_ones_kept(tmp_path):
    good = photos(tmp_path / "ok", 3)
    (tmp_path / "ok" / "empty.jpg").write_bytes(b"")
    (tmp_path / "ok" / "notes.jpg").write_text("operator notes, not a photo\n", encoding="utf-8")
    whole = io.BytesIO()
    Image.effect_noise((64, 64), 50).save(whole, "PNG")
    cut = whole.getvalue()
    (tmp_path / "ok" / "cut.png").write_bytes(cut[: len(cut) // 2])
    (tmp_path / "ok" / "readme.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "ok" / "LICENSE").write_text("x", encoding="utf-8")
    photos(tmp_path / "dent", 2)

    scan = scan_folder(tmp_path)

    assert scan.classes["ok"] == good
    assert reasons(scan) == {
        "empty.jpg": "empty file",
        "notes.jpg": "not an image (looks like a text file)",
        "cut.png": reasons(scan)["cut.png"],
        "readme.txt": "not an image file (.txt)",
        "LICENSE": "not an image file (no extension)",
    }
    assert reasons(scan)["cut.png"].startswith("truncated or corrupt PNG")


def test_hidden_and_system_files_are_ignored_silently(tmp_path):
    photos(tmp_path / "ok", 1)
    photos(tmp_path / "dent", 1)
    for name in (".DS_Store", "._img_00.png", "Thumbs.db", "desktop.ini"):
        (tmp_path / "ok" / name).write_bytes(b"\x00\x01junk")
    photos(tmp_path / "ok" / ".thumbnails", 2)
    photos(tmp_path / "__MACOSX" / "ok", 1)  # left behind by zip files made on a Mac

    scan = scan_folder(tmp_path)

    assert list(scan.classes) == ["dent", "ok"]
    assert names(scan.classes["ok"]) == ["img_00.png"]
    assert scan.skipped == []


def test_files_directly_in_root_are_skipped_with_advice(two_classes):
    photo(two_classes / "stray.png")
    scan = scan_folder(two_classes)
    assert "stray.png" not in names(p for paths in scan.classes.values() for p in paths)
    assert reasons(scan) == {
        "stray.png": "not in a class folder; move it into a sub-folder named after its class"
    }


def test_other_folders_next_to_train_and_test_are_reported(tmp_path):
    photos(tmp_path / "train" / "ok", 1)
    photos(tmp_path / "test" / "ok", 1)
    photos(tmp_path / "old", 1)
    photo(tmp_path / "loose.png")
    photo(tmp_path / "train" / "loose_in_train.png")

    found = reasons(scan_folder(tmp_path))

    assert found["old"].startswith("folder not read")
    assert found["loose.png"].startswith("not in a part folder")
    assert found["loose_in_train.png"].startswith("not in a class folder")


def test_images_in_sub_folders_of_a_class_belong_to_that_class(tmp_path):
    photo(tmp_path / "ok" / "top.png")
    photo(tmp_path / "ok" / "line 2" / "2024-05" / "deep.png")
    photos(tmp_path / "dent", 1)
    assert names(scan_folder(tmp_path).classes["ok"]) == ["deep.png", "top.png"]


def test_unicode_spaces_and_double_dots_in_names_work(tmp_path):
    unusual = [
        tmp_path / "défaut de surface" / "photo 1.jpg",
        tmp_path / "défaut de surface" / "a..b.png",
        tmp_path / "缺陷" / "图像.png",
        tmp_path / "dent..v2" / "x.. .jpeg",
    ]
    for path in unusual:
        photo(path)

    scan = scan_folder(tmp_path)
    split = load_split(tmp_path)

    assert sorted(p for paths in scan.classes.values() for p in paths) == sorted(unusual)
    assert split.classnames == ["dent..v2", "défaut de surface", "缺陷"]
    assert scan.skipped == []


def test_upper_case_suffixes_are_images(tmp_path):
    photo(tmp_path / "ok" / "A.JPG")
    photo(tmp_path / "dent" / "B.Png")
    assert {name: names(paths) for name, paths in scan_folder(tmp_path).classes.items()} == {
        "dent": ["B.Png"],
        "ok": ["A.JPG"],
    }


def test_link_outside_the_task_folder_is_skipped(tmp_path):
    outside = photo(tmp_path / "elsewhere" / "secret.png")
    task = tmp_path / "task"
    photos(task / "ok", 1)
    photos(task / "dent", 1)
    (task / "ok" / "linked.png").symlink_to(outside)
    (task / "borrowed").symlink_to(outside.parent, target_is_directory=True)

    scan = scan_folder(task)

    assert list(scan.classes) == ["dent", "ok"]
    assert names(scan.classes["ok"]) == ["img_00.png"]
    found = reasons(scan)
    assert found["linked.png"].startswith("link points outside the task folder")
    assert found["borrowed"].startswith("link points outside the task folder")


def test_links_inside_the_task_folder_are_followed_and_loops_stopped(tmp_path):
    photos(tmp_path / "ok", 1)
    photos(tmp_path / "dent", 1)
    (tmp_path / "dent" / "same_as_ok.png").symlink_to(tmp_path / "ok" / "img_00.png")
    (tmp_path / "dent" / "again").symlink_to(tmp_path / "dent", target_is_directory=True)
    (tmp_path / "ok" / "dead.png").symlink_to(tmp_path / "ok" / "missing.png")
    (tmp_path / "ok" / "self.png").symlink_to(tmp_path / "ok" / "self.png")

    scan = scan_folder(tmp_path)

    assert names(scan.classes["dent"]) == ["img_00.png", "same_as_ok.png"]
    assert reasons(scan) == {
        "again": "link loops back to a folder that contains it",
        "dead.png": "broken link: its target does not exist",
        "self.png": "broken link: its target does not exist",
    }


def test_a_pipe_named_like_an_image_does_not_hang_the_scan(tmp_path):
    photos(tmp_path / "ok", 1)
    photos(tmp_path / "dent", 1)
    os.mkfifo(tmp_path / "ok" / "pipe.jpg")
    assert reasons(scan_folder(tmp_path)) == {"pipe.jpg": "not a regular file"}


def test_progress_reports_every_checked_image(two_classes):
    calls = []
    scan_folder(two_classes, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 16) for done in range(1, 17)]


def test_missing_root_or_a_file_as_root_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="folder not found"):
        scan_folder(tmp_path / "nowhere")
    with pytest.raises(DataError, match="folder not found"):
        load_split(tmp_path / "nowhere")
    with pytest.raises(DataError, match="is a file"):
        load_split(photo(tmp_path / "one.png"))


# ----------------------------------------------------------------------------- building the task


def test_class_names_come_from_folder_names(two_classes):
    split = load_split(two_classes, shots=2)
    assert split.classnames == ["no defect", "scratch"]
    assert {item.label for item in split.train} == {0, 1}
    assert all(
        item.path.parent.name == ["no_defect", "scratch"][item.label]
        for item in split.train + split.test
    )


def test_prompt_names_are_tidied_and_unicode_normalised():
    assert class_prompt_name("no_defect") == "no defect"
    assert class_prompt_name("  bent__pin_ ") == "bent pin"
    decomposed = unicodedata.normalize("NFD", "rayure_légère")
    assert class_prompt_name(decomposed) == "rayure légère"


def test_classes_layout_draws_shots_for_training_and_tests_on_the_rest(two_classes):
    split = load_split(two_classes, shots=4, seed=1)

    assert [len(train_paths(split, label)) for label in (0, 1)] == [4, 4]
    assert len(split.test) == (10 - 4) + (6 - 4)
    assert not {item.path for item in split.train} & {item.path for item in split.test}
    assert split.notes == []
    assert split.val == []


def test_same_seed_gives_the_same_split(two_classes):
    assert load_split(two_classes, shots=3, seed=7) == load_split(two_classes, shots=3, seed=7)


def test_different_seeds_draw_different_images(two_classes):
    first = load_split(two_classes, shots=3, seed=1)
    second = load_split(two_classes, shots=3, seed=2)
    assert train_paths(first, 0) != train_paths(second, 0)


def test_split_does_not_depend_on_the_order_files_are_listed_in(two_classes, monkeypatch):
    expected = load_split(two_classes, shots=3, seed=5)
    real_iterdir = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: iter(reversed(list(real_iterdir(self)))))
    assert load_split(two_classes, shots=3, seed=5) == expected


def test_adding_a_class_leaves_the_other_classes_draws_alone(two_classes):
    before = load_split(two_classes, shots=3, seed=3)
    photos(two_classes / "crack", 5)
    after = load_split(two_classes, shots=3, seed=3)
    assert after.classnames == ["crack", "no defect", "scratch"]
    assert train_paths(after, 1) == train_paths(before, 0)
    assert train_paths(after, 2) == train_paths(before, 1)


def test_without_shots_every_image_trains_and_a_note_says_nothing_is_left_to_test(two_classes):
    split = load_split(two_classes)
    assert len(split.train) == 16
    assert split.test == []
    assert split.notes == [
        "no test images for any class, so accuracy cannot be measured "
        "(without a shots number every image is used for training)"
    ]


def test_class_with_fewer_images_than_shots_uses_them_all_with_a_note(two_classes):
    split = load_split(two_classes, shots=8)

    assert len(train_paths(split, 1)) == 6
    assert (
        "class 'scratch' has only 6 training images, fewer than the 8 shots asked; "
        "all of them are used" in split.notes
    )
    assert "class 'scratch' has no test images, so its accuracy cannot be measured" in split.notes
    assert len(split.test) == 2  # the two no_defect images not drawn


def test_fewer_than_two_classes_is_refused_with_the_expected_layout(tmp_path):
    photos(tmp_path / "ok", 3)
    with pytest.raises(DataError) as caught:
        load_split(tmp_path, shots=1)
    message = str(caught.value)
    assert "at least two class folders, found 1 ('ok')" in message
    assert str(tmp_path / "good") in message and "train" in message


def test_empty_folder_is_refused_as_having_no_class_folders(tmp_path):
    with pytest.raises(DataError, match="at least two class folders, found none"):
        load_split(tmp_path)


def test_class_without_usable_images_is_named_with_what_to_do(tmp_path):
    photos(tmp_path / "ok", 3)
    photos(tmp_path / "dent", 2)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DataError) as caught:
        load_split(tmp_path, shots=1)
    assert "class 'empty class' has no usable training images" in str(caught.value)
    assert f"add images to {tmp_path / 'empty_class'} or remove that folder" in str(caught.value)


def test_class_whose_images_are_all_broken_says_why(tmp_path):
    photos(tmp_path / "ok", 3)
    (tmp_path / "dent").mkdir()
    (tmp_path / "dent" / "a.jpg").write_bytes(b"")
    (tmp_path / "dent" / "b.jpg").write_bytes(b"")
    with pytest.raises(
        DataError,
        match=r"'dent' has no usable training images; "
        r"2 files there could not be used \(e.g. a.jpg: empty file\)",
    ):
        load_split(tmp_path)


def test_folders_that_mean_the_same_class_are_refused(tmp_path):
    photos(tmp_path / "no_defect", 1)
    photos(tmp_path / "no defect", 1)
    with pytest.raises(DataError, match="both give the class name 'no defect'"):
        load_split(tmp_path)


@pytest.mark.parametrize("shots", [0, -2, 1.5, True, "4"])
def test_bad_shots_are_a_config_error(two_classes, shots):
    with pytest.raises(ConfigError, match="shots must be a whole number"):
        load_split(two_classes, shots=shots)


def test_skipped_files_travel_with_the_split(two_classes):
    (two_classes / "scratch" / "broken.jpg").write_bytes(b"")
    assert reasons(load_split(two_classes, shots=1)) == {"broken.jpg": "empty file"}


# ----------------------------------------------------------------------------- train/test layout


@pytest.fixture
def train_test(tmp_path) -> Path:
    photos(tmp_path / "train" / "good", 8, "tr")
    photos(tmp_path / "train" / "bent_pin", 5, "tr")
    photos(tmp_path / "test" / "good", 3, "te")
    photos(tmp_path / "test" / "bent_pin", 2, "te")
    return tmp_path


def test_train_test_layout_takes_its_parts_from_the_folders(train_test):
    split = load_split(train_test)

    assert split.classnames == ["bent pin", "good"]
    assert sorted(names(item.path for item in split.train)) == sorted(
        [f"tr_{i:02d}.png" for i in range(5)] + [f"tr_{i:02d}.png" for i in range(8)]
    )
    assert all(item.path.parts[-3] == "train" for item in split.train)
    assert all(item.path.parts[-3] == "test" for item in split.test)
    assert len(split.test) == 5
    assert split.notes == []


def test_train_test_layout_draws_shots_from_train_only(train_test):
    split = load_split(train_test, shots=2, seed=4)

    assert [len(train_paths(split, label)) for label in (0, 1)] == [2, 2]
    assert all(item.path.parts[-3] == "train" for item in split.train)
    assert len(split.test) == 5  # the test folder is used as it is
    assert load_split(train_test, shots=2, seed=4) == split


def test_val_folder_becomes_the_validation_part(train_test):
    photos(train_test / "val" / "good", 2, "va")
    split = load_split(train_test)
    assert [(item.path.name, item.label) for item in split.val] == [
        ("va_00.png", 1),
        ("va_01.png", 1),
    ]


def test_class_only_in_test_is_refused(train_test):
    photos(train_test / "test" / "crack", 1)
    with pytest.raises(DataError, match="test/crack has no matching train/crack folder"):
        load_split(train_test)


def test_class_without_test_images_gives_a_note(train_test):
    for path in (train_test / "test" / "bent_pin").iterdir():
        path.unlink()
    split = load_split(train_test)
    assert split.notes == [
        "class 'bent pin' has no test images, so its accuracy cannot be measured"
    ]


def test_test_folder_without_train_folder_is_refused(tmp_path):
    photos(tmp_path / "test" / "ok", 1)
    photos(tmp_path / "test" / "dent", 1)
    with pytest.raises(DataError, match="no train/ folder"):
        load_split(tmp_path)


def test_train_test_layout_with_one_class_is_refused(tmp_path):
    photos(tmp_path / "train" / "ok", 2)
    photos(tmp_path / "test" / "ok", 2)
    with pytest.raises(DataError, match="at least two class folders, found 1 \\('ok'\\)"):
        load_split(tmp_path)


# ----------------------------------------------------------------------------- app intake


def test_split_from_files_draws_exactly_like_load_split(tmp_path):
    files = {"dent": photos(tmp_path / "dent", 7), "ok": photos(tmp_path / "ok", 9)}
    from_folder = load_split(tmp_path, shots=3, seed=11)
    from_files = split_from_files(
        {name: list(reversed(paths)) for name, paths in files.items()}, shots=3, seed=11
    )
    assert from_files.train == from_folder.train
    assert from_files.test == from_folder.test
    assert from_files.classnames == ["dent", "ok"]


def test_split_from_files_checks_its_classes(tmp_path):
    with pytest.raises(DataError, match="at least two classes"):
        split_from_files({"ok": photos(tmp_path / "ok", 2)}, shots=1)
    with pytest.raises(DataError, match="class 'dent' has no usable training images"):
        split_from_files({"ok": photos(tmp_path / "ok", 2), "dent": []}, shots=1)
    with pytest.raises(ConfigError):
        split_from_files({"a": [], "b": []}, shots=0)


def test_choosing_the_folder_above_the_classes_gets_a_hint(tmp_path):
    photos(tmp_path / "dataset" / "ok", 2)
    photos(tmp_path / "dataset" / "dent", 2)
    with pytest.raises(DataError) as caught:
        load_split(tmp_path)
    assert f"if {tmp_path / 'dataset'} holds the class folders, choose it instead" in str(
        caught.value
    )


def test_empty_class_in_a_capitalised_train_folder_names_the_real_folder(tmp_path):
    photos(tmp_path / "Train" / "ok", 2)
    (tmp_path / "Train" / "dent").mkdir()
    photos(tmp_path / "Test" / "ok", 1)
    with pytest.raises(DataError, match="add images to .*Train/dent or remove that folder"):
        load_split(tmp_path)


@pytest.mark.parametrize("seed", [1.5, "1", None, True])
def test_bad_seed_is_a_config_error(two_classes, seed):
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        load_split(two_classes, shots=2, seed=seed)
