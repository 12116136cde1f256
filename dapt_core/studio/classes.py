"""A project's classes: add, rename and delete them, and rename the project."""

from __future__ import annotations

from .manifest import ProjectManifest, refuse_taken_name, require_class
from .storage import (
    WorkspaceError,
    clean_class_name,
    clean_project_name,
)


class ClassEdits(ProjectManifest):
    """The class and project-name edits of a Project."""

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
            manifest["images"] = [item for item in manifest["images"] if item["class"] != name]
            self._write_manifest(manifest)
            self._forget_blobs(removed)
        return len(removed)

