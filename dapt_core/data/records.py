"""The labelled-image records that flow from readers and intake into training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LabeledImage:
    """One image on disk and the index of its class in the task's class list."""

    path: Path
    label: int


@dataclass(frozen=True)
class Skipped:
    """A file that was not used, and why, in words a user can act on."""

    path: str
    reason: str


@dataclass
class Split:
    """A classification task: class names in label order and the images of each part.

    `val` is empty where a task has no validation part; `notes` carries what a user should
    be told about how the split was made (for example fewer images than shots requested).
    """

    classnames: list[str]
    train: list[LabeledImage]
    test: list[LabeledImage]
    val: list[LabeledImage] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
