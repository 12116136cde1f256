"""Two sessions editing one project at the same moment: the project's lock keeps every change."""

from __future__ import annotations

import threading

from dapt_core.studio.workspace import Workspace


def test_two_sessions_adding_photos_and_classes_at_once_lose_nothing(tmp_path, colour_task):
    project = Workspace(tmp_path / "workspace").create_project("Busy")
    folders = sorted(colour_task.iterdir())
    start = threading.Barrier(len(folders))
    errors = []

    def session(folder):
        # Each session adds its class, then its photos one at a time: each add reads the manifest, changes
        # it and writes it back, which without the lock would drop the other session's changes.
        try:
            start.wait(30)
            project.add_class(folder.name)
            for path in sorted(folder.glob("*.png")):
                project.add_image_paths(folder.name, [path])
        except Exception as error:  # reported below: a thread's exception would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=session, args=(folder,)) for folder in folders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors, errors
    assert sorted(project.classes) == [folder.name for folder in folders]
    for folder in folders:
        assert len(project.images(folder.name)) == len(list(folder.glob("*.png")))
    stored = {path.stem for path in project.images_dir.rglob("*") if path.is_file()}
    assert {record.sha256 for record in project.images()} <= stored
