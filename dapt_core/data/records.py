"""The labelled-image records that flow from readers and intake into training and evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
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

    def without_class(self, name: str) -> Split:
        """The task without class `name`, the others' labels renumbered in their order (a run on the classes
        there were before one was added: the warm start's benchmark and tests)."""
        keep = [c for c in self.classnames if c != name]
        index = {self.classnames.index(c): i for i, c in enumerate(keep)}

        def part(items: list[LabeledImage]) -> list[LabeledImage]:
            return [replace(item, label=index[item.label]) for item in items if item.label in index]

        return Split(keep, part(self.train), part(self.test), part(self.val))
