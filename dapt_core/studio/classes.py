"""A project's classes: add, rename and delete them, and rename the project."""

from __future__ import annotations

from ..deploy.pass_fail import NO_GOOD_CLASS, guess_good_class
from .manifest import ProjectManifest, refuse_taken_name, require_class
from .storage import (
    WorkspaceError,
    clean_class_name,
    clean_project_name,
)

# The manifest's record of the class that means a good part: a class name, NO_GOOD_CLASS when the user
# said no class does, absent while the user has not said (the guess from the names applies).
GOOD_CLASS_KEY = "good_class"


class ClassEdits(ProjectManifest):
    """The class and project-name edits of a Project."""

    # ------------------------------------------------------------------ the good class
    @property
    def good_class(self) -> str | None:
        """The class that means a good part: the user's choice, else the guess from the class names;
        None when there is none (a task without a pass/fail decision)."""
        manifest = self.manifest()
        chosen = manifest.get(GOOD_CLASS_KEY)
        if chosen is None:
            return guess_good_class(manifest["classes"])
        return chosen if chosen in manifest["classes"] else None

    @property
    def good_class_confirmed(self) -> bool:
        """Whether the user has said which class is good (or that none is), rather than the guess applying."""
        return GOOD_CLASS_KEY in self.manifest()

    def set_good_class(self, name: str | None) -> None:
        """Record the class that means a good part; None records that no class does."""
        with self._lock:
            manifest = self.manifest()
            if name is not None:
                require_class(manifest, name)
            manifest[GOOD_CLASS_KEY] = NO_GOOD_CLASS if name is None else name
            self._write_manifest(manifest)

    # ------------------------------------------------------------------ project and classes
    def rename(self, new_name: str) -> None:
        new_name = clean_project_name(new_name)
        others = {info.name.casefold() for info in self.workspace.list_projects() if info.id != self.id}
        if new_name.casefold() in others:
            raise WorkspaceError("project_exists", name=new_name)
        with self._lock:
            manifest = self.manifest()
            manifest["name"] = new_name
            self._write_manifest(manifest)

    def add_class(self, name: str) -> str:
        name = clean_class_name(name)
        with self._lock:
            manifest = self.manifest()
            refuse_taken_name(manifest, name)
            manifest["classes"].append(name)
            self._write_manifest(manifest)
        return name

    def rename_class(self, old: str, new: str) -> str:
        new = clean_class_name(new)
        with self._lock:
            manifest = self.manifest()
            require_class(manifest, old)
            if new != old:
                refuse_taken_name(manifest, new, ignore=old)
            manifest["classes"] = [new if c == old else c for c in manifest["classes"]]
            if manifest.get(GOOD_CLASS_KEY) == old:
                manifest[GOOD_CLASS_KEY] = new
            for item in manifest["images"]:
                if item["class"] == old:
                    item["class"] = new
            self._write_manifest(manifest)
        return new

    def delete_class(self, name: str) -> int:
        """Remove a class and its images; returns how many images went with it."""
        with self._lock:
            manifest = self.manifest()
            require_class(manifest, name)
            removed = [item["sha256"] for item in manifest["images"] if item["class"] == name]
            manifest["classes"] = [c for c in manifest["classes"] if c != name]
            if manifest.get(GOOD_CLASS_KEY) == name:
                del manifest[GOOD_CLASS_KEY]  # back to the guess from the remaining names
            manifest["images"] = [item for item in manifest["images"] if item["class"] != name]
            self._write_manifest(manifest)
            self._forget_blobs(removed)
        return len(removed)

