"""The Export page's section for the inspection line: try photos, ONNX download, latency table."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from test_app import make_project, new_app, no_exception, tune, workspace  # noqa: F401  (fixture)

from ui import nav


def _noise_png() -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_try_photos_then_export_onnx_and_measure_latency_and_report_the_calibration(workspace, tmp_path):  # noqa: F811
    project = make_project(workspace, tmp_path, per_class=12)  # 27 test photos: enough to calibrate
    at = new_app()
    tune(at, project.id)
    at.switch_page(nav.EXPORT.path)
    at.run()
    no_exception(at)
    assert any("Unknown: novelty above" in c.value for c in at.caption)

    [info] = project.runs()
    run = project.run(info.id)
    photo = run.test_image_path(run.data["test"][0]).read_bytes()
    at.file_uploader(key=f"try-{info.id}").set_value([("part.png", photo, "image/png"),
                                                      ("noise.png", _noise_png(), "image/png"),
                                                      ("broken.png", b"not a picture", "image/png")])
    at.run()
    no_exception(at)
    table = at.dataframe[0].value
    assert list(table["File"]) == ["part.png", "noise.png"]
    # a photo flagged unknown gets no class and no percentage as its confidence (nor a prediction set)
    unknown = table["Result"].str.startswith("Unknown: unlike the training photos (closest class: ")
    assert unknown.iloc[1], table  # the noise
    assert (table.loc[unknown, "Confidence"] == "–").all() and (table.loc[unknown, "Prediction set"] == "–").all()
    assert set(table.loc[~unknown, "Result"]) <= {"blue", "green", "red"}
    assert all(v.endswith("%") for v in table.loc[~unknown, "Confidence"])
    assert any("Check the parts of unknown photos by hand" in c for c in (str(e.value) for e in at.caption))
    assert any("broken.png" in w for w in (str(e.value) for e in at.warning))

    at.button(key="make-onnx").click()
    at.run()
    no_exception(at)
    # the button names exactly the files the ZIP holds
    import zipfile

    kept = at.session_state[f"onnx-zip-{info.id}"]  # a file in the workspace's cache, not bytes in the session
    assert isinstance(kept, str) and Path(kept).parent == workspace.cache_dir / "exports"
    with zipfile.ZipFile(kept) as archive:
        names = archive.namelist()
    assert sorted(name.rsplit(".", 1)[1] for name in names) == ["json", "onnx"]
    labels = [b.label for b in at.get("download_button")]
    assert f"Download the ZIP with {', '.join(names)}" in labels

    at.button(key="run-bench").click()
    at.run()
    no_exception(at)
    bench = at.dataframe[-1].value
    assert set(bench["Engine"]) == {"torch", "onnx"} and set(bench["Batch"]) == {1, 32}
    assert (bench["ms per photo"] > 0).all() and (bench["Peak memory (MB)"] > 0).all()

    # the HTML report states what the prompt file's calibration measured on the test photos
    from dapt_core.engine import prompt_file
    from ui.narrative import pct
    from ui.report_builder import build_report
    from ui.run_view import load_view

    calibration = prompt_file.load(run.prompt_file).header["calibration"]
    measured = calibration["measured"]
    numbers = [f"{calibration['temperature']:.3f}", f"{calibration['unknown_threshold']:.4f}",
               pct(measured["false_reject_rate"])]
    for coverage in ("0.9", "0.95"):
        numbers += [pct(measured["coverage"][coverage]["coverage"]),
                    f"{measured['coverage'][coverage]['mean_set_size']:.2f}"]
    for lang, heading in (("en", "unknown photos and prediction sets"), ("ja", "未知の写真と予測集合")):
        html = build_report(load_view(run), project.name, lang=lang)
        section = html[html.index(heading):]
        section = section[:section.index("</section>")]
        assert all(f"<td>{number}</td>" in section for number in numbers), (lang, numbers)
        assert f"{calibration['held_out_photos']}" in section
