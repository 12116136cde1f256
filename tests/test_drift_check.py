"""The app's drift check of a saved run (dapt_core/studio/drift_check.py): uploaded photos (files or a ZIP) and
a `dapt predict --csv` file through the same path as `dapt drift`, windows named by the uploaded names, the
last check kept in the run's folder."""

from __future__ import annotations

import io
import types
import zipfile

import pytest
from conftest import write_colour_task
from PIL import Image

from dapt_core.cli import main
from dapt_core.engine.inference import Classifier
from dapt_core.errors import DataError
from dapt_core.studio import drift_check


@pytest.fixture(scope="module")
def run(tiny_spec, tmp_path_factory):
    """A stand-in for a saved run: its folder and a tuned, calibrated prompt file."""
    folder = tmp_path_factory.mktemp("run")
    root = write_colour_task(folder / "data", per_class=12)
    out = folder / "prompts.safetensors"
    assert main(["tune", str(root), "--backbone", tiny_spec, "--shots", "3", "--epochs", "1", "--out", str(out)]) == 0
    return types.SimpleNamespace(path=folder, prompt_file=out, data_root=root)


def png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 48), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_uploaded_photos_are_named_as_uploaded_and_kept(run):
    files = [(f"dark-{i:02d}.png", png((i, i, i))) for i in range(12)]
    files.reverse()  # name order, not upload order
    result = drift_check.check_run(run, files, window=6, classifier_for=Classifier.from_prompt_file)
    windows = result["report"]["windows"]
    assert [(w["first"], w["last"]) for w in windows] == [("dark-00.png", "dark-05.png"),
                                                          ("dark-06.png", "dark-11.png")]
    assert result["source"] == "photos" and result["photos"] == 12
    assert result["report"]["drift"] and "from window 1 (dark-00.png) on" in result["report"]["verdict"]
    assert "dapt-drift-" not in str(result)  # no temporary path reaches the user
    assert drift_check.load_last(run) == result
    report = drift_check.report_of(result)
    assert drift_check.first_photo_of(report, 2) == 7


def test_a_zip_and_a_bad_file(run):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, path in enumerate(sorted(run.data_root.rglob("*.png"))[:10]):
            archive.writestr(f"line/{i:03d}.png", path.read_bytes())
    files = [("line.zip", buffer.getvalue()), ("broken.png", b"not a picture")]
    result = drift_check.check_run(run, files, window=5, classifier_for=Classifier.from_prompt_file)
    assert result["photos"] == 10 and result["report"]["windows"][0]["first"] == "line/000.png"
    assert [s["name"] for s in result["skipped"]] == ["broken.png"]


def test_a_predict_csv_compares_the_unknown_share_only(run, tmp_path):
    csv_path = tmp_path / "p.csv"
    assert main(["predict", str(run.prompt_file), str(run.data_root), "--csv", str(csv_path)]) == 0
    result = drift_check.check_run(run, [("p.csv", csv_path.read_bytes())], window=12,
                                   classifier_for=Classifier.from_prompt_file)
    assert result["source"] == "csv" and result["report"]["tests"] == ["unknown share"]
    assert "/" not in result["report"]["windows"][0]["first"]  # the line PC's paths shortened to file names
    with pytest.raises(DataError):
        drift_check.check_run(run, [("p.csv", csv_path.read_bytes()), ("x.png", png((0, 0, 0)))], window=12,
                              classifier_for=Classifier.from_prompt_file)
