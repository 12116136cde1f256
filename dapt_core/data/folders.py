"""Folders of class sub-folders become a task: which images are usable, and the few-shot split.

Two layouts are read:

    root/<class>/<images>                     "classes": shots are drawn per class for
                                              training and the rest are held out as test
    root/train/<class>/<images>               "train_test": the parts come from the folders;
    root/test/<class>/<images>                shots, if given, are drawn from train only.
    root/val/<class>/<images>   (optional)

A root holding a folder named train, test or val (any letter case) is read as the second
layout. Class names come from folder names: underscores become spaces for the prompt
("no_defect" -> "no defect", see `class_prompt_name`), and classes are numbered in sorted
folder-name order.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DataError, ImageRejected
from .images import DECODE_THREADS, IMAGE_SUFFIXES, check_image
from .records import LabeledImage, Skipped, Split

LAYOUT_CLASSES = "classes"
LAYOUT_TRAIN_TEST = "train_test"

# In the "classes" layout every image is in this one part until load_split draws the shots.
PART_ALL = "all"
PART_NAMES = ("train", "test", "val")

# Files and folders that operating systems, zip tools and NAS boxes create on their own.
# They are ignored without a word, like names starting with a dot (.DS_Store, ._photo.jpg).
_SYSTEM_NAMES = frozenset(
    {"thumbs.db", "desktop.ini", "__macosx", "$recycle.bin", "system volume information", "@eadir"}
)

Progress = Callable[[int, int], None]

_NOT_IN_CLASS_FOLDER = "not in a class folder; move it into a sub-folder named after its class"


@dataclass
class FolderScan:
    """What a folder holds: usable images by part and class, and every file that was skipped.

    `parts` maps a part name to {class folder name: sorted image paths}. The "classes" layout
    has the single part "all"; the "train_test" layout has "train", "test" and "val" where
    those folders exist. Class folder names are the keys, in sorted order.
    """

    root: Path
    layout: str
    parts: dict[str, dict[str, list[Path]]]
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def classes(self) -> dict[str, list[Path]]:
        """Every class folder name, sorted, with its usable images from all parts together."""
        merged: dict[str, list[Path]] = {}
        for by_class in self.parts.values():
            for folder_name, paths in by_class.items():
                merged.setdefault(folder_name, []).extend(paths)
        return {name: sorted(merged[name]) for name in sorted(merged)}


def class_prompt_name(folder_name: str) -> str:
    """The class name used in prompts and Split.classnames: "no_defect" -> "no defect".

    Unicode is normalised to NFC so that a name typed on macOS (which stores decomposed
    accents) gives the same prompt as the same name typed elsewhere.
    """
    name = unicodedata.normalize("NFC", folder_name).replace("_", " ")
    return " ".join(name.split())


def scan_folder(root: str | Path, *, progress: Progress | None = None) -> FolderScan:
    """Find the class folders under `root` and decode every candidate image once.

    Args:
        root: the task folder, in either layout described at the top of this module.
        progress: called as progress(done, total) after each image is checked, for long scans.

    Raises DataError if `root` is missing or not a folder. Unusable files never raise; they
    are listed in FolderScan.skipped with the reason.
    """
    root = _existing_folder(root)
    skipped: list[Skipped] = []
    real_root = root.resolve()
    walker = _Walker(real_root, skipped)
    folders, loose_files = walker.entries(root, frozenset({real_root}))
    part_folders = {
        folder.name.lower(): folder for folder in folders if folder.name.lower() in PART_NAMES
    }

    if part_folders:
        layout = LAYOUT_TRAIN_TEST
        walker.skip_all(
            loose_files, "not in a part folder; move it into train/<class>/ or test/<class>/"
        )
        unread = [folder for folder in folders if folder not in part_folders.values()]
        walker.skip_all(
            unread, "folder not read: next to train/ and test/ only train, test and val are used"
        )
        candidates = {}
        for part, part_folder in sorted(part_folders.items()):
            ancestors = frozenset({real_root, part_folder.resolve()})
            class_folders, loose_in_part = walker.entries(part_folder, ancestors)
            walker.skip_all(loose_in_part, _NOT_IN_CLASS_FOLDER)
            candidates[part] = walker.images_by_class(class_folders, ancestors)
    else:
        layout = LAYOUT_CLASSES
        walker.skip_all(loose_files, _NOT_IN_CLASS_FOLDER)
        candidates = {PART_ALL: walker.images_by_class(folders, frozenset({real_root}))}

    parts = _keep_decodable(candidates, skipped, progress)
    skipped.sort(key=lambda item: item.path)
    return FolderScan(root=root, layout=layout, parts=parts, skipped=skipped)


def load_split(
    root: str | Path,
    shots: int | None = None,
    seed: int = 1,
    *,
    progress: Progress | None = None,
) -> Split:
    """Scan `root` and build the task, drawing `shots` training images per class.

    Args:
        root: the task folder (either layout).
        shots: training images per class; None uses every training image (in the "classes"
            layout that leaves no test images, which a note says).
        seed: which images are drawn; the same seed and files always give the same split.
        progress: passed to scan_folder.

    Raises ConfigError for a bad `shots`, DataError when the folders cannot form a task.
    """
    _check_draw_settings(shots, seed)
    scan = scan_folder(root, progress=progress)
    if scan.layout == LAYOUT_CLASSES:
        classes = _classes_layout_sources(scan)
    else:
        classes = _train_test_layout_sources(scan)
    split = _assemble_split(classes, shots, seed)
    split.skipped = list(scan.skipped)
    return split


def split_from_files(
    files_by_class: Mapping[str, Sequence[Path]],
    shots: int | None = None,
    seed: int = 1,
    *,
    test_by_class: Mapping[str, Sequence[Path]] | None = None,
    order: Callable[[Path], object] | None = None,
) -> Split:
    """Draw `shots` training images per class and hold the rest out for testing.

    The same drawing as load_split, for images the app keeps itself. Class names are used as
    given (no underscore replacement) and numbered in sorted order.

    A class listed in `test_by_class` with test images keeps them as its test set and draws
    its shots from `files_by_class` (load_split's train/test layout). Any other class holds out
    at least half of its images: at most len // 2 of them train, whatever `shots` asks, so
    every class is measured. `order` sorts each class's images before the draw (by default
    their paths); the app passes the names the files had in their folder, so that the draw
    picks the same images load_split picks from that folder.

    Raises ConfigError for a bad `shots`, DataError for fewer than two classes or a class
    without images, or one with a single image and no test images (it cannot both train
    and be measured).
    """
    _check_draw_settings(shots, seed)
    if len(files_by_class) < 2:
        raise DataError(
            f"a task needs at least two classes, got {_quoted(files_by_class)}; add another class"
        )
    test_by_class = test_by_class or {}
    classes = []
    for name in sorted(files_by_class):
        pool = [Path(p) for p in files_by_class[name]]
        test = [Path(p) for p in test_by_class.get(name, ())]
        classes.append(_ClassSource(
            name, pool, test or None, [], "add images to it or remove it",
            max_train=None if test else len(pool) // 2,
        ))
    return _assemble_split(classes, shots, seed, order)


# ----------------------------------------------------------------------------- scanning


def _existing_folder(root: str | Path) -> Path:
    root = Path(root).absolute()  # absolute so the paths in a Split work from any directory
    if not root.exists():
        raise DataError(f"folder not found: {root}")
    if not root.is_dir():
        raise DataError(f"{root} is a file; give the folder that holds one sub-folder per class")
    return root


@dataclass
class _Walker:
    """Lists folders for the scan, applying the rules on hidden files, links and odd entries."""

    real_root: Path
    skipped: list[Skipped]

    def entries(self, folder: Path, ancestors: frozenset[Path]) -> tuple[list[Path], list[Path]]:
        """Visible sub-folders and regular files of `folder`, sorted; anything else is skipped.

        `ancestors` are the resolved folders this one is in (itself included), so that a link
        back to any of them is refused instead of being followed forever.
        """
        try:
            children = sorted(folder.iterdir())
        except OSError as error:
            self.skipped.append(
                Skipped(str(folder), f"cannot read folder: {error.strerror or error}")
            )
            return [], []
        folders: list[Path] = []
        files: list[Path] = []
        for child in children:
            if child.name.startswith(".") or child.name.casefold() in _SYSTEM_NAMES:
                continue
            if child.is_symlink() and not self._link_is_usable(child, ancestors):
                continue
            if child.is_dir():
                folders.append(child)
            elif child.is_file():
                files.append(child)
            else:  # sockets, pipes, devices: opening a pipe named x.jpg would hang the scan
                self.skipped.append(Skipped(str(child), "not a regular file"))
        return folders, files

    def _link_is_usable(self, link: Path, ancestors: frozenset[Path]) -> bool:
        try:
            target = link.resolve()
        except (OSError, RuntimeError):  # a link that points to itself, directly or in a circle
            target = None
        if target is None or not target.exists():
            reason = "broken link: its target does not exist"
        elif not target.is_relative_to(self.real_root):
            # A task folder may be an unpacked upload: its links must not reach the rest of disk.
            reason = f"link points outside the task folder (to {target}); copy the file in instead"
        elif target in ancestors:
            reason = "link loops back to a folder that contains it"
        else:
            return True
        self.skipped.append(Skipped(str(link), reason))
        return False

    def skip_all(self, paths: list[Path], reason: str) -> None:
        self.skipped.extend(Skipped(str(path), reason) for path in paths)

    def images_by_class(
        self, class_folders: list[Path], ancestors: frozenset[Path]
    ) -> dict[str, list[Path]]:
        """Candidate image files of each class folder, by folder name."""
        return {
            folder.name: sorted(self._images_within(folder, ancestors)) for folder in class_folders
        }

    def _images_within(self, folder: Path, ancestors: frozenset[Path]) -> list[Path]:
        # Sub-folders of a class folder belong to that class (e.g. photos sorted by date or
        # by line), so they are read recursively.
        ancestors = ancestors | {folder.resolve()}
        folders, files = self.entries(folder, ancestors)
        images = []
        for path in files:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(path)
            else:
                suffix = path.suffix.lower() or "no extension"
                self.skipped.append(Skipped(str(path), f"not an image file ({suffix})"))
        for sub_folder in folders:
            images.extend(self._images_within(sub_folder, ancestors))
        return images


def _keep_decodable(
    candidates: dict[str, dict[str, list[Path]]],
    skipped: list[Skipped],
    progress: Progress | None,
) -> dict[str, dict[str, list[Path]]]:
    """Check that each candidate decodes (see check_image); keep those that do, record the reason for the others."""
    total = sum(len(paths) for by_class in candidates.values() for paths in by_class.values())
    done = 0
    usable: dict[str, dict[str, list[Path]]] = {}
    # Pillow releases the GIL while it reads and decodes, so threads check several photos at once
    # (1,600 JPEGs of 224 px on a 2-core machine: 0.67 s on one thread, 0.39 s on two).
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        for part, by_class in candidates.items():
            usable[part] = {}
            for folder_name in sorted(by_class):
                paths = by_class[folder_name]
                kept = []
                for path, reason in zip(paths, pool.map(_why_undecodable, paths)):
                    if reason is None:
                        kept.append(path)
                    else:
                        skipped.append(Skipped(str(path), reason))
                    done += 1
                    if progress is not None:
                        progress(done, total)
                usable[part][folder_name] = kept
    return usable


def _why_undecodable(path: Path) -> str | None:
    try:
        check_image(path)
    except ImageRejected as rejected:
        return str(rejected)
    return None


# ----------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class _ClassSource:
    """One class's images before drawing, and what to tell the user if it has none."""

    name: str  # as in Split.classnames
    pool: list[Path]  # training shots are drawn from these
    test: list[Path] | None  # None: the images not drawn from `pool` become the test images
    val: list[Path]
    fix_if_empty: str
    max_train: int | None = None  # set when `test` is None: the rest must keep some images


def _classes_layout_sources(scan: FolderScan) -> list[_ClassSource]:
    by_folder = scan.parts[PART_ALL]
    if len(by_folder) < 2:
        raise DataError(_too_few_classes(by_folder, scan.root, scan.root))
    names = _prompt_names(by_folder)
    return [
        _ClassSource(names[folder], paths, None, [], _fix_empty_folder(scan, scan.root / folder))
        for folder, paths in by_folder.items()
    ]


def _train_test_layout_sources(scan: FolderScan) -> list[_ClassSource]:
    if "train" not in scan.parts:
        raise DataError(
            f"{scan.root} has test/ or val/ but no train/ folder; "
            f"put training images in {scan.root / 'train'}/<class>/"
        )
    train = scan.parts["train"]
    test = scan.parts.get("test", {})
    val = scan.parts.get("val", {})
    for part_name, part in (("test", test), ("val", val)):
        unknown = sorted(set(part) - set(train))
        if unknown:
            raise DataError(
                f"{part_name}/{unknown[0]} has no matching train/{unknown[0]} folder; "
                f"add training images for it or remove {part_name}/{unknown[0]}"
            )
    train_root = _part_folder(scan.root, "train")
    if len(train) < 2:
        raise DataError(_too_few_classes(train, train_root, scan.root))
    names = _prompt_names(train)
    return [
        _ClassSource(
            names[folder],
            paths,
            test.get(folder, []),
            val.get(folder, []),
            _fix_empty_folder(scan, train_root / folder),
        )
        for folder, paths in train.items()
    ]


def _assemble_split(
    classes: list[_ClassSource],
    shots: int | None,
    seed: int,
    order: Callable[[Path], object] | None = None,
) -> Split:
    """The one place the shots of a folder task are drawn: `dapt tune` and `dapt eval` (load_split) and
    the app's projects (split_from_files) alike. The paper's benchmarks draw theirs differently, with
    data.fewshot.draw_protocol_shots; _draw_class_shots says why the two are kept apart."""
    split = Split(classnames=[source.name for source in classes], train=[], test=[])
    without_test = []
    for label, source in enumerate(classes):
        if not source.pool:
            raise DataError(
                f"class '{source.name}' has no usable training images; {source.fix_if_empty}"
            )
        wanted = shots
        if source.max_train is not None:
            if source.max_train < 1:
                raise DataError(
                    f"class '{source.name}' has only {_count(len(source.pool), 'image')}; it needs "
                    "at least 2, one to train on and one to test on; add images to it"
                )
            if shots is None or shots > source.max_train:
                wanted = source.max_train
                split.notes.append(
                    f"class '{source.name}' has {_count(len(source.pool), 'image')}: "
                    f"{wanted} of them train and the rest are kept for testing "
                    "(at most half of a class trains when it has no test images of its own)"
                )
        drawn, rest = _draw_class_shots(source.pool, wanted, seed, order)
        if wanted is not None and len(drawn) < wanted:
            split.notes.append(
                f"class '{source.name}' has only {_count(len(drawn), 'training image')}, "
                f"fewer than the {shots} shots asked; all of them are used"
            )
        test = rest if source.test is None else sorted(source.test, key=order)
        if not test:
            without_test.append(source.name)
        split.train.extend(LabeledImage(path, label) for path in drawn)
        split.test.extend(LabeledImage(path, label) for path in test)
        split.val.extend(LabeledImage(path, label) for path in sorted(source.val))
    if len(without_test) == len(classes):
        all_drawn = shots is None and all(source.test is None for source in classes)
        hint = " (without a shots number every image is used for training)" if all_drawn else ""
        split.notes.append(f"no test images for any class, so accuracy cannot be measured{hint}")
    else:
        split.notes.extend(
            f"class '{name}' has no test images, so its accuracy cannot be measured"
            for name in without_test
        )
    return split


def _draw_class_shots(
    paths: Sequence[Path], shots: int | None, seed: int, order: Callable[[Path], object] | None = None
) -> tuple[list[Path], list[Path]]:
    """A folder task's draw of one class: pick `shots` of the class's `paths` at random and return
    (picked, rest), both sorted; the rest are the class's test images where it has no test folder.

    Sorting first makes the draw independent of the order the file system lists files in.
    Each class gets a fresh random.Random(seed) rather than sharing one generator, so adding
    or removing a class leaves the other classes' draws unchanged: a user adds classes to a
    project as they go, and the runs saved before must keep their training photos.

    The paper's benchmarks draw with data.fewshot.draw_protocol_shots instead: one generator
    advanced class by class (as CoOp's code draws), over training and validation parts, with the
    selection saved beside the results. One function for both would change either the training
    photos of every project and `dapt tune` split (and the measurements made on them, e.g.
    benchmarks/demo_methods.py, hard_tasks.py and tiles.py, which draw with load_split) and break
    the promise above (tests/test_folders.py), or every new benchmark selection, so both stay.
    """
    ordered = sorted(paths, key=order)
    if shots is None or shots >= len(ordered):
        return ordered, []
    picked = set(random.Random(seed).sample(range(len(ordered)), shots))
    drawn = [path for index, path in enumerate(ordered) if index in picked]
    rest = [path for index, path in enumerate(ordered) if index not in picked]
    return drawn, rest


def _check_draw_settings(shots: int | None, seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed must be a whole number, got {seed!r}")
    if shots is None:
        return
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise ConfigError(
            "shots must be a whole number of at least 1, or unset to use every training image; "
            f"got {shots!r}"
        )


def _prompt_names(by_folder: Mapping[str, object]) -> dict[str, str]:
    """Folder name -> prompt name, refusing names that vanish or collide once converted."""
    names: dict[str, str] = {}
    folder_of: dict[str, str] = {}
    for folder in sorted(by_folder):
        name = class_prompt_name(folder)
        if not name:
            raise DataError(
                f"folder '{folder}' gives an empty class name; rename it after its class"
            )
        if name in folder_of:
            raise DataError(
                f"folders '{folder_of[name]}' and '{folder}' both give the class name '{name}'; "
                "rename one of them"
            )
        names[folder] = name
        folder_of[name] = folder
    return names


def _part_folder(root: Path, part: str) -> Path:
    """The folder of a part as spelled on disk ("Train" as well as "train")."""
    matches = sorted(child for child in root.iterdir() if child.name.lower() == part)
    return matches[-1] if matches else root / part


def _too_few_classes(by_folder: Mapping[str, object], where: Path, root: Path) -> str:
    message = (
        f"a task needs at least two class folders, found {_quoted(by_folder)} in {where}; "
        f"expected one folder of images per class, e.g. {root / 'good'} and {root / 'scratch'}, "
        f"or {root / 'train'}/<class>/ and {root / 'test'}/<class>/"
    )
    if len(by_folder) == 1:  # often the user chose the folder one level above the classes
        message += (
            f"; if {where / next(iter(by_folder))} holds the class folders, choose it instead"
        )
    return message


def _fix_empty_folder(scan: FolderScan, folder: Path) -> str:
    rejected = [item for item in scan.skipped if Path(item.path).is_relative_to(folder)]
    advice = f"add images to {folder} or remove that folder"
    if not rejected:
        return advice
    example = rejected[0]
    return (
        f"{_count(len(rejected), 'file')} there could not be used "
        f"(e.g. {Path(example.path).name}: {example.reason}); {advice}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _quoted(names: Mapping[str, object]) -> str:
    if not names:
        return "none"
    return f"{len(names)} (" + ", ".join(f"'{name}'" for name in sorted(names)) + ")"
