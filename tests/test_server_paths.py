"""With sign-in on, the Tune page's weights file or model folder must lie in the allowed folders, and every
other path gets the same answer whether or not it exists (dapt_core/studio/server_paths.py)."""

from __future__ import annotations

import pytest

from dapt_core.studio.server_paths import refuse_outside
from dapt_core.studio.storage import WorkspaceError


def refusal(spec: str, root, restricted: bool = True) -> str | None:
    try:
        refuse_outside(spec, root, restricted=restricted)
    except WorkspaceError as error:
        assert error.code == "path_not_allowed"
        return str(error)
    return None


def test_outside_the_allowed_folders_an_existing_and_a_missing_file_get_the_same_answer(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hash")
    existing = refusal(f"ViT-B-32:{secret}", tmp_path / "ws")
    missing = refusal(f"ViT-B-32:{tmp_path / 'nothing-here.pt'}", tmp_path / "ws")
    assert existing == missing is not None
    assert "This path cannot be used" in existing and str(tmp_path) not in existing
    assert refusal(f"local-dir:{tmp_path}", tmp_path / "ws") == existing


def test_inside_the_allowed_folders_and_without_sign_in_paths_are_used(tmp_path, monkeypatch):
    models = tmp_path / "ws" / "models"
    models.mkdir(parents=True)
    assert refusal(f"ViT-B-32:{models / 'vit.pt'}", tmp_path / "ws") is None
    assert refusal(f"local-dir:{models / 'my-clip'}", tmp_path / "ws") is None
    assert refusal(f"ViT-B-32:{tmp_path / 'elsewhere.pt'}", tmp_path / "ws", restricted=False) is None
    assert refusal("ViT-B-32:openai", tmp_path / "ws") is None and refusal("demo", tmp_path / "ws") is None
    monkeypatch.setenv("DAPT_ALLOWED_DIRS", str(tmp_path / "weights"))
    assert refusal(f"ViT-B-32:{tmp_path / 'weights' / 'vit.pt'}", tmp_path / "ws") is None
    assert refusal(f"ViT-B-32:{models / 'vit.pt'}", tmp_path / "ws") is not None


@pytest.mark.parametrize("escape", ["{models}/../shadow", "{models}/link/shadow"])
def test_dot_dot_and_links_out_of_an_allowed_folder_are_refused(tmp_path, escape):
    models = tmp_path / "ws" / "models"
    models.mkdir(parents=True)
    (models / "link").symlink_to(tmp_path)
    (tmp_path / "shadow").write_text("secret")
    assert refusal("ViT-B-32:" + escape.format(models=models), tmp_path / "ws") is not None
