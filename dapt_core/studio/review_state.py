"""The label review of a project (engine/label_review.py) and the findings its user chose to keep.

    <project>/review.json     {"format": 1, "dismissed": [finding key, ...]}

A finding's key names its kind, its photos' content hashes and, for a suspect label, the class it looks like
(label_review.Finding.key), so a finding the user kept ("keep and stop asking") stays hidden on every later
review, and comes back only if it changes (another class suggested, another photo involved). Nothing here
changes a photo or a label: the page does that, on a click, through the project's own move_images and
remove_images.
"""

from __future__ import annotations

import json
from pathlib import Path

from .storage import atomic_write_json, lock_for

REVIEW_FILE = "review.json"
FORMAT = 1


def _path(project) -> Path:
    return Path(project.path) / REVIEW_FILE


def dismissed(project) -> set[str]:
    """The keys of the findings kept on purpose; an unreadable file counts as none (it only hides findings)."""
    try:
        data = json.loads(_path(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    keys = data.get("dismissed") if isinstance(data, dict) else None
    return {str(key) for key in keys} if isinstance(keys, list) else set()


def dismiss(project, key: str) -> None:
    """Keep this finding and stop asking about it."""
    with lock_for(Path(project.path)):
        keys = dismissed(project) | {str(key)}
        atomic_write_json(_path(project), {"format": FORMAT, "dismissed": sorted(keys)})


def review_project(project, backbone, *, cache_dir=None, cancel=None, on_batch=None) -> dict:
    """label_review.review_photos over every photo of the project (both parts), the dismissed findings left
    out. Each finding gets "key" and "shas" (its photos' content hashes) and "classes" (their classes at
    review time, so a page can tell when the project has changed since); the result's "dismissed" counts
    the findings left out."""
    from ..data.records import LabeledImage
    from ..engine.label_review import review_photos, to_json

    classnames = project.classes
    index = {name: i for i, name in enumerate(classnames)}
    records = [record for record in project.images() if record.class_name in index]
    items = [LabeledImage(project.images_dir / record.file_name, index[record.class_name]) for record in records]
    hashes = [record.sha256 for record in records]
    result = review_photos(backbone, classnames, items, parts=[record.part for record in records], hashes=hashes,
                           names=[record.name for record in records], cache_dir=cache_dir, cancel=cancel,
                           on_batch=on_batch)
    kept = dismissed(project)
    findings = []
    for finding in result["findings"]:
        key = finding.key(result["hashes"])
        if key in kept:
            continue
        item = finding.to_dict(result["names"])
        item.update(key=key, shas=[result["hashes"][i] for i in finding.photos],
                    classes=[classnames[result["labels"][i]] for i in finding.photos])
        findings.append(item)
    data = to_json({**result, "findings": []})
    data.update(findings=findings, dismissed=len(result["findings"]) - len(findings))
    return data
