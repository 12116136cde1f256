"""Benchmark readers and the few-shot protocol, on miniature fakes of CoOp's dataset layouts.

Each fixture writes a dataset in its real format (split JSON, text lists, numbered or wnid folders) with a
few 8x8 images per class, so the readers run exactly as they would on the downloaded data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from dapt_core.data.datasets import DATASET_FOLDERS, DATASETS, canonical_name, imagenet_label_map, read_dataset
from dapt_core.data.fewshot import few_shot_split
from dapt_core.data.records import LabeledImage, Split
from dapt_core.errors import ConfigError, DataError

PER_PART = {"train": 4, "val": 2, "test": 3}


def write_image(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (len(path.name) * 7 % 256, 90, 160)).save(path)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time, to prove nothing was written."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


# Per split-file dataset: folder, split file, image base inside the folder, and per class
# (raw name in the split file, name expected after cleaning, path pattern of its images).
SPLIT_FILE_CASES = {
    "OxfordPets": ("oxford_pets", "split_zhou_OxfordPets.json", "images", [
        ("abyssinian", "abyssinian", "Abyssinian_{i}.jpg"),
        ("american_bulldog", "american bulldog", "american_bulldog_{i}.jpg"),
        ("yorkshire_terrier", "yorkshire terrier", "yorkshire_terrier_{i}.jpg"),
    ]),
    "Caltech101": ("caltech-101", "split_zhou_Caltech101.json", "101_ObjectCategories", [
        ("accordion", "accordion", "accordion/image_{i:04d}.jpg"),
        ("airplanes", "airplane", "airplanes/image_{i:04d}.jpg"),
        ("face", "face", "Faces/image_{i:04d}.jpg"),
    ]),
    "StanfordCars": ("stanford_cars", "split_zhou_StanfordCars.json", "", [
        ("2012 Acura RL Sedan", "2012 Acura RL Sedan", "cars_{part}/0{label}{i:03d}.jpg"),
        ("2007 BMW X5 SUV", "2007 BMW X5 SUV", "cars_{part}/0{label}{i:03d}.jpg"),
    ]),
    "Flowers102": ("oxford_flowers", "split_zhou_OxfordFlowers.json", "jpg", [
        ("pink primrose", "pink primrose", "image_0{label}{i:03d}.jpg"),
        ("hard-leaved pocket orchid", "hard-leaved pocket orchid", "image_1{label}{i:03d}.jpg"),
    ]),
    "Food101": ("food-101", "split_zhou_Food101.json", "images", [
        ("apple_pie", "apple pie", "apple_pie/{i}00{label}.jpg"),
        ("baby_back_ribs", "baby back ribs", "baby_back_ribs/{i}00{label}.jpg"),
    ]),
    "SUN397": ("sun397", "split_zhou_SUN397.json", "SUN397", [
        ("abbey", "abbey", "a/abbey/sun_{i}.jpg"),
        ("outdoor athletic_field", "outdoor athletic field", "a/athletic_field/outdoor/sun_{i}.jpg"),
    ]),
    "DTD": ("dtd", "split_zhou_DescribableTextures.json", "images", [
        ("banded", "banded", "banded/banded_{i:04d}.jpg"),
        ("zigzagged", "zigzagged", "zigzagged/zigzagged_{i:04d}.jpg"),
    ]),
    "EuroSAT": ("eurosat", "split_zhou_EuroSAT.json", "2750", [
        ("AnnualCrop", "Annual Crop Land", "AnnualCrop/AnnualCrop_{i}.jpg"),
        ("HerbaceousVegetation", "Herbaceous Vegetation Land", "HerbaceousVegetation/HerbaceousVegetation_{i}.jpg"),
        ("Sea or Lake", "Sea or Lake", "SeaLake/SeaLake_{i}.jpg"),  # split files may carry the rename already
    ]),
    "UCF101": ("ucf101", "split_zhou_UCF101.json", "UCF-101-midframes", [
        ("Apply_Eye_Makeup", "Apply Eye Makeup", "Apply_Eye_Makeup/v_ApplyEyeMakeup_g{i:02d}_c01.jpg"),
        ("Yo_Yo", "Yo Yo", "YoYo/v_YoYo_g{i:02d}_c01.jpg"),
    ]),
}


def build_split_file_dataset(root: Path, name: str, per_part: dict[str, int] = PER_PART) -> dict[str, list]:
    """Write one split-file dataset under `root` and return its split content."""
    folder, split_file, image_base, classes = SPLIT_FILE_CASES[name]
    dataset_dir = root / folder
    content: dict[str, list] = {"train": [], "val": [], "test": []}
    counter = 0
    for label, (raw, _, pattern) in enumerate(classes):
        for part, count in per_part.items():
            for _ in range(count):
                counter += 1
                relative = pattern.format(i=counter, label=label, part="train" if part != "test" else "test")
                write_image(dataset_dir / image_base / relative)
                content[part].append([relative, label, raw])
    (dataset_dir / split_file).write_text(json.dumps(content), encoding="utf-8")
    return content


# ---------------------------------------------------------------- split-file readers


@pytest.mark.parametrize("name", sorted(SPLIT_FILE_CASES))
def test_split_file_reader_gives_classes_sizes_labels_and_clean_names(tmp_path, name):
    content = build_split_file_dataset(tmp_path, name)
    folder, _, image_base, classes = SPLIT_FILE_CASES[name]

    split = read_dataset(name, tmp_path)

    assert split.classnames == [expected for _, expected, _ in classes]
    n = len(classes)
    assert (len(split.train), len(split.val), len(split.test)) == (4 * n, 2 * n, 3 * n)
    expected_train = {(tmp_path / folder / image_base / rel).resolve(): label for rel, label, _ in content["train"]}
    assert {image.path.resolve(): image.label for image in split.train} == expected_train
    assert all(image.path.is_absolute() and image.path.is_file() for image in split.test)
    assert split.skipped == []


def test_split_file_images_missing_on_disk_are_reported_not_used(tmp_path):
    content = build_split_file_dataset(tmp_path, "DTD")
    gone = tmp_path / "dtd" / "images" / content["test"][0][0]
    gone.unlink()

    split = read_dataset("DTD", tmp_path)

    assert len(split.test) == 2 * 3 - 1
    assert [s.path for s in split.skipped] == [str(gone)]
    assert any("missing on disk" in note for note in split.notes)


def test_split_file_with_conflicting_names_for_one_label_is_rejected(tmp_path):
    content = build_split_file_dataset(tmp_path, "DTD")
    content["test"][0][2] = "striped"
    (tmp_path / "dtd" / "split_zhou_DescribableTextures.json").write_text(json.dumps(content))

    with pytest.raises(DataError, match="two class names"):
        read_dataset("DTD", tmp_path)


def test_missing_split_file_error_names_file_full_path_and_where_to_get_it(tmp_path):
    build_split_file_dataset(tmp_path, "OxfordPets")
    expected = tmp_path / "oxford_pets" / "split_zhou_OxfordPets.json"
    expected.unlink()

    with pytest.raises(DataError) as raised:
        read_dataset("OxfordPets", tmp_path)

    message = str(raised.value)
    assert "split_zhou_OxfordPets.json" in message
    assert str(expected) in message
    assert "DATASETS.md" in message


def test_missing_image_folder_error_names_the_folder(tmp_path):
    build_split_file_dataset(tmp_path, "EuroSAT")
    image_dir = tmp_path / "eurosat" / "2750"
    for path in sorted(image_dir.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    image_dir.rmdir()

    with pytest.raises(DataError) as raised:
        read_dataset("eurosat", tmp_path)

    assert str(image_dir) in str(raised.value)
    assert "EuroSAT.zip" in str(raised.value)


def test_missing_dataset_folder_is_reported_with_its_path(tmp_path):
    with pytest.raises(DataError) as raised:
        read_dataset("Food101", tmp_path)

    assert str(tmp_path / "food-101") in str(raised.value)
    assert "split_zhou_Food101.json" in str(raised.value)


# ---------------------------------------------------------------- FGVC-Aircraft


def build_fgvc_aircraft(root: Path) -> list[str]:
    dataset_dir = root / "fgvc_aircraft"
    variants = ["707-320", "A300B4", "F-16A/B", "Cessna 172"]
    dataset_dir.mkdir(parents=True)
    (dataset_dir / "variants.txt").write_text("\n".join(variants) + "\n")
    image_id = 1000000
    for part, count in PER_PART.items():
        lines = []
        for variant in variants:
            for _ in range(count):
                image_id += 1
                write_image(dataset_dir / "images" / f"{image_id}.jpg")
                lines.append(f"{image_id} {variant}")
        (dataset_dir / f"images_variant_{part}.txt").write_text("\n".join(lines) + "\n")
    return variants


def test_fgvc_aircraft_reads_variants_and_part_lists(tmp_path):
    variants = build_fgvc_aircraft(tmp_path)

    split = read_dataset("FGVCAircraft", tmp_path)

    assert split.classnames == variants
    assert (len(split.train), len(split.val), len(split.test)) == (16, 8, 12)
    first_of_f16 = split.train[2 * PER_PART["train"]]
    assert split.classnames[first_of_f16.label] == "F-16A/B"
    assert first_of_f16.path == tmp_path / "fgvc_aircraft" / "images" / "1000009.jpg"


def test_fgvc_aircraft_missing_variants_file_is_named(tmp_path):
    build_fgvc_aircraft(tmp_path)
    (tmp_path / "fgvc_aircraft" / "variants.txt").unlink()

    with pytest.raises(DataError) as raised:
        read_dataset("fgvcaircraft", tmp_path)

    assert str(tmp_path / "fgvc_aircraft" / "variants.txt") in str(raised.value)
    assert "fgvc-aircraft-2013b.tar.gz" in str(raised.value)


# ---------------------------------------------------------------- ImageNet and its variants

# A miniature ImageNet: real wnids and CLIP names, including the two names CLIP's list gives twice.
MINI_IMAGENET = {
    "n01440764": "tench",
    "n02119789": "kit_fox",
    "n03773504": "missile",
    "n04008634": "missile",
    "n04355933": "sunglasses",
    "n04356056": "sunglasses",
}
SUBSET_A = ["n04356056", "n01440764", "n04008634"]  # written unsorted: the reader must sort by wnid
SUBSET_R = ["n02119789", "n04355933"]


def write_classnames(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{wnid} {name}\n" for wnid, name in MINI_IMAGENET.items()))


def build_imagenet(root: Path) -> None:
    write_classnames(root / "imagenet" / "classnames.txt")
    for wnid in MINI_IMAGENET:
        for i in range(3):
            write_image(root / "imagenet" / "images" / "train" / wnid / f"{wnid}_{i}.JPEG")
        for i in range(2):
            write_image(root / "imagenet" / "images" / "val" / wnid / f"ILSVRC2012_val_{wnid}{i}.JPEG")


def build_imagenet_variants(root: Path) -> None:
    wnids = sorted(MINI_IMAGENET)
    write_classnames(root / "imagenetv2" / "classnames.txt")
    for label in range(len(wnids)):
        write_image(root / "imagenetv2" / "imagenetv2-matched-frequency-format-val" / str(label) / f"{label}a.jpeg")
    write_classnames(root / "imagenet-sketch" / "classnames.txt")
    for wnid in wnids:
        write_image(root / "imagenet-sketch" / "images" / wnid / "sketch_0.JPEG")
    for folder, image_folder, subset in (("imagenet-adversarial", "imagenet-a", SUBSET_A),
                                         ("imagenet-rendition", "imagenet-r", SUBSET_R)):
        write_classnames(root / folder / "classnames.txt")
        (root / folder / image_folder).mkdir(parents=True)
        (root / folder / image_folder / "README.txt").write_text("not a class")
        for wnid in subset:
            for i in range(2):
                write_image(root / folder / image_folder / wnid / f"{i}.jpg")


def test_imagenet_uses_val_as_test_and_has_no_val_part(tmp_path):
    build_imagenet(tmp_path)

    split = read_dataset("imagenet", tmp_path)

    assert split.classnames == ["tench", "kit fox", "missile", "missile", "sunglasses", "sunglasses"]
    assert (len(split.train), len(split.val), len(split.test)) == (18, 0, 12)
    fox = [image for image in split.train if image.path.parent.name == "n02119789"]
    assert {image.label for image in fox} == {1}
    assert all(image.path.parts[-3] == "val" for image in split.test)
    assert any("test set" in note for note in split.notes)


def test_imagenet_missing_classnames_is_named_with_its_path(tmp_path):
    build_imagenet(tmp_path)
    (tmp_path / "imagenet" / "classnames.txt").unlink()

    with pytest.raises(DataError) as raised:
        read_dataset("ImageNet", tmp_path)

    assert str(tmp_path / "imagenet" / "classnames.txt") in str(raised.value)


def test_imagenet_with_loose_val_images_says_to_sort_them(tmp_path):
    build_imagenet(tmp_path)
    val_dir = tmp_path / "imagenet" / "images" / "val"
    for image in list(val_dir.rglob("*.JPEG")):
        image.rename(val_dir / image.name)
    for folder in val_dir.iterdir():
        if folder.is_dir():
            folder.rmdir()

    with pytest.raises(DataError, match="wnid"):
        read_dataset("ImageNet", tmp_path)


def test_imagenet_v2_numbered_folders_keep_imagenet_labels(tmp_path):
    build_imagenet(tmp_path)
    build_imagenet_variants(tmp_path)
    imagenet = read_dataset("ImageNet", tmp_path)

    split = read_dataset("ImageNetV2", tmp_path)

    assert split.classnames == imagenet.classnames
    assert split.train == [] and split.val == []
    assert sorted((int(image.path.parent.name), image.label) for image in split.test) == [(i, i) for i in range(6)]


def test_imagenet_sketch_keeps_imagenet_labels(tmp_path):
    build_imagenet(tmp_path)
    build_imagenet_variants(tmp_path)
    imagenet = read_dataset("ImageNet", tmp_path)
    wnid_label = {image.path.parent.name: image.label for image in imagenet.train}

    split = read_dataset("imagenet-sketch", tmp_path)

    assert split.classnames == imagenet.classnames
    assert all(image.label == wnid_label[image.path.parent.name] for image in split.test)
    assert len(split.test) == 6


@pytest.mark.parametrize("name, folder, subset", [
    ("ImageNetA", "imagenet-adversarial", SUBSET_A),
    ("ImageNetR", "imagenet-rendition", SUBSET_R),
])
def test_imagenet_a_and_r_hold_their_subset_with_imagenet_names(tmp_path, name, folder, subset):
    build_imagenet(tmp_path)
    build_imagenet_variants(tmp_path)
    imagenet = read_dataset("ImageNet", tmp_path)

    split = read_dataset(name, tmp_path)

    wnids = sorted(subset)
    assert len(split.classnames) == len(subset)
    assert len(split.test) == 2 * len(subset)
    assert {image.path.parent.name: image.label for image in split.test} == {w: i for i, w in enumerate(wnids)}
    # Same strings as ImageNet's reader gives these wnids, and the wnid-based map points at those classes.
    imagenet_label = {image.path.parent.name: image.label for image in imagenet.train}
    mapping = imagenet_label_map(name, tmp_path)
    assert mapping == [imagenet_label[w] for w in wnids]
    assert [imagenet.classnames[i] for i in mapping] == split.classnames


def test_imagenet_a_label_map_picks_the_right_class_among_duplicate_names(tmp_path):
    build_imagenet(tmp_path)
    build_imagenet_variants(tmp_path)
    imagenet = read_dataset("ImageNet", tmp_path)
    split_a = read_dataset("ImageNetA", tmp_path)

    mapping = imagenet_label_map("ImageNetA", tmp_path)

    # ImageNet-A holds n04008634 ("missile", ImageNet label 3) and n04356056 ("sunglasses", label 5); the
    # first ImageNet class with those names is a different wnid, so a lookup by name would be wrong.
    assert split_a.classnames == ["tench", "missile", "sunglasses"]
    assert mapping == [0, 3, 5]
    assert [imagenet.classnames.index(name) for name in split_a.classnames] != mapping


def test_imagenet_variant_falls_back_to_imagenets_classnames(tmp_path):
    build_imagenet(tmp_path)
    build_imagenet_variants(tmp_path)
    (tmp_path / "imagenet-rendition" / "classnames.txt").unlink()

    assert read_dataset("ImageNetR", tmp_path).classnames == ["kit fox", "sunglasses"]

    (tmp_path / "imagenet" / "classnames.txt").unlink()
    with pytest.raises(DataError) as raised:
        read_dataset("ImageNetR", tmp_path)
    assert str(tmp_path / "imagenet-rendition" / "classnames.txt") in str(raised.value)


def test_imagenet_variant_missing_image_folder_is_named(tmp_path):
    write_classnames(tmp_path / "imagenetv2" / "classnames.txt")

    with pytest.raises(DataError) as raised:
        read_dataset("ImageNetV2", tmp_path)

    assert str(tmp_path / "imagenetv2" / "imagenetv2-matched-frequency-format-val") in str(raised.value)


# ---------------------------------------------------------------- names and registry


def test_dataset_names_are_case_insensitive_and_unknown_names_list_known_ones(tmp_path):
    assert canonical_name("oxfordpets") == "OxfordPets"
    assert canonical_name("ImageNet-A") == "ImageNetA"
    assert canonical_name("OxfordFlowers") == "Flowers102"
    assert len(DATASETS) == 15 and set(DATASET_FOLDERS) == set(DATASETS)

    with pytest.raises(DataError) as raised:
        read_dataset("CIFAR10", tmp_path)

    assert "CIFAR10" in str(raised.value)
    assert all(name in str(raised.value) for name in DATASETS)


def test_folder_names_follow_coop_datasets_md():
    assert DATASET_FOLDERS == {
        "ImageNet": "imagenet", "Caltech101": "caltech-101", "OxfordPets": "oxford_pets",
        "StanfordCars": "stanford_cars", "Flowers102": "oxford_flowers", "Food101": "food-101",
        "FGVCAircraft": "fgvc_aircraft", "SUN397": "sun397", "DTD": "dtd", "EuroSAT": "eurosat",
        "UCF101": "ucf101", "ImageNetV2": "imagenetv2", "ImageNetSketch": "imagenet-sketch",
        "ImageNetA": "imagenet-adversarial", "ImageNetR": "imagenet-rendition",
    }


# ---------------------------------------------------------------- few-shot protocol


def make_task(root: Path, train_counts: list[int], val_per_class: int = 6, test_per_class: int = 2) -> Split:
    """A Split over real (empty) files: few_shot_split never opens images, it only checks they exist."""
    classnames = [f"class {c}" for c in range(len(train_counts))]
    parts: dict[str, list[LabeledImage]] = {"train": [], "val": [], "test": []}
    for label, train_count in enumerate(train_counts):
        for part, count in (("train", train_count), ("val", val_per_class), ("test", test_per_class)):
            for i in range(count):
                path = root / "images" / f"c{label}" / f"{part}_{i:03d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()
                parts[part].append(LabeledImage(path, label))
    return Split(classnames, parts["train"], parts["test"], parts["val"])


def per_class(images: list[LabeledImage]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for image in images:
        counts[image.label] = counts.get(image.label, 0) + 1
    return counts


def shuffled(split: Split, seed: int) -> Split:
    rng = random.Random(seed)
    train, val = list(split.train), list(split.val)
    rng.shuffle(train)
    rng.shuffle(val)
    return Split(list(split.classnames), train, list(split.test), val)


def test_few_shot_draws_k_per_class_caps_val_and_keeps_test(tmp_path):
    task = make_task(tmp_path / "data", [20, 20, 20])

    sixteen = few_shot_split(task, shots=16, seed=1, cache_path=None)
    two = few_shot_split(task, shots=2, seed=1, cache_path=None)

    assert per_class(sixteen.train) == {0: 16, 1: 16, 2: 16}
    assert per_class(sixteen.val) == {0: 4, 1: 4, 2: 4}
    assert per_class(two.train) == {0: 2, 1: 2, 2: 2}
    assert per_class(two.val) == {0: 2, 1: 2, 2: 2}
    assert sixteen.test == task.test and sixteen.classnames == task.classnames
    assert set(sixteen.train) <= set(task.train) and set(sixteen.val) <= set(task.val)


def test_few_shot_class_with_too_few_images_keeps_all_and_says_so(tmp_path):
    task = make_task(tmp_path / "data", [20, 3, 20])

    split = few_shot_split(task, shots=8, seed=1, cache_path=None)

    assert per_class(split.train) == {0: 8, 1: 3, 2: 8}
    assert any("'class 1' (3)" in note for note in split.notes)


def test_few_shot_is_deterministic_independent_of_order_and_seed_dependent(tmp_path):
    task = make_task(tmp_path / "data", [30, 30, 30, 30])

    first = few_shot_split(task, shots=4, seed=1, cache_path=None)
    again = few_shot_split(shuffled(task, 99), shots=4, seed=1, cache_path=None)
    other = few_shot_split(task, shots=4, seed=2, cache_path=None)

    assert first.train == again.train and first.val == again.val
    assert set(first.train) != set(other.train)


def test_few_shot_rejects_nonsense_shots(tmp_path):
    task = make_task(tmp_path / "data", [5, 5])

    with pytest.raises(ConfigError):
        few_shot_split(task, shots=0, seed=1, cache_path=None)


def test_few_shot_cache_is_saved_and_reused_outside_the_data_folder(tmp_path):
    data = tmp_path / "data"
    task = make_task(data, [30, 30, 30])
    cache = tmp_path / "runs" / "pets-16shot-seed1" / "fewshot.json"
    before = snapshot(data)

    first = few_shot_split(task, shots=16, seed=1, cache_path=cache)
    saved = json.loads(cache.read_text())
    # A different listing order and even a different seed stream would draw other images; the cache wins.
    reused = few_shot_split(shuffled(task, 7), shots=16, seed=1, cache_path=cache)

    assert (saved["shots"], saved["seed"], saved["classnames"]) == (16, 1, task.classnames)
    assert len(saved["train"]) == 48 and all(not Path(rel).is_absolute() for rel, _ in saved["train"])
    assert reused.train == first.train and reused.val == first.val
    assert any("reused" in note for note in reused.notes)
    assert snapshot(data) == before


def test_few_shot_cache_keeps_the_selection_when_the_dataset_grows_or_shrinks_elsewhere(tmp_path):
    task = make_task(tmp_path / "data", [30, 30])
    cache = tmp_path / "run" / "fewshot.json"
    first = few_shot_split(task, shots=4, seed=1, cache_path=cache)
    # Drop every unselected training image of class 0: a fresh draw now differs, the saved one must not.
    kept = [image for image in task.train if image.label == 1 or image in first.train]
    changed = Split(task.classnames, kept + [LabeledImage(kept[0].path.with_name("extra.jpg"), 0)],
                    task.test, task.val)
    changed.train[-1].path.touch()

    fresh = few_shot_split(shuffled(changed, 5), shots=4, seed=1, cache_path=None)
    reused = few_shot_split(shuffled(changed, 5), shots=4, seed=1, cache_path=cache)

    assert fresh.train != first.train
    assert reused.train == first.train and reused.val == first.val


def test_few_shot_cache_survives_moving_the_dataset(tmp_path):
    task = make_task(tmp_path / "old", [10, 10])
    cache = tmp_path / "fewshot.json"
    first = few_shot_split(task, shots=4, seed=3, cache_path=cache)
    (tmp_path / "old").rename(tmp_path / "new")
    moved = make_task(tmp_path / "new", [10, 10])

    reused = few_shot_split(moved, shots=4, seed=3, cache_path=cache)

    assert [image.path.name for image in reused.train] == [image.path.name for image in first.train]
    assert all(str(image.path).startswith(str(tmp_path / "new")) for image in reused.train)


def test_few_shot_cache_that_no_longer_fits_says_to_delete_it(tmp_path):
    task = make_task(tmp_path / "data", [10, 10, 10])
    cache = tmp_path / "fewshot.json"
    chosen = few_shot_split(task, shots=4, seed=1, cache_path=cache)

    fewer_classes = Split(task.classnames[:2], [i for i in task.train if i.label < 2],
                          [i for i in task.test if i.label < 2], [i for i in task.val if i.label < 2])
    with pytest.raises(DataError, match="Delete .*fewshot.json"):
        few_shot_split(fewer_classes, shots=4, seed=1, cache_path=cache)

    with pytest.raises(DataError, match="Delete"):
        few_shot_split(task, shots=8, seed=1, cache_path=cache)

    chosen.train[0].path.unlink()
    with pytest.raises(DataError) as raised:
        few_shot_split(task, shots=4, seed=1, cache_path=cache)
    assert chosen.train[0].path.name in str(raised.value) and str(cache) in str(raised.value)


def test_reading_and_few_shot_on_a_real_layout_write_nothing_into_the_data_root(tmp_path):
    root = tmp_path / "data"
    build_split_file_dataset(root, "OxfordPets", {"train": 10, "val": 6, "test": 3})
    build_fgvc_aircraft(root)
    build_imagenet(root)
    build_imagenet_variants(root)
    before = snapshot(root)

    for name in ("OxfordPets", "FGVCAircraft", "ImageNet", "ImageNetV2", "ImageNetSketch", "ImageNetA", "ImageNetR"):
        read_dataset(name, root)
    pets = few_shot_split(read_dataset("OxfordPets", root), 8, 2, tmp_path / "run" / "fewshot.json")

    assert per_class(pets.train) == {0: 8, 1: 8, 2: 8}
    assert per_class(pets.val) == {0: 4, 1: 4, 2: 4}
    assert len(pets.test) == 9
    assert snapshot(root) == before
