"""The Export page's section for the inspection line: try photos, ONNX download, latency table."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image
from test_app import make_project, new_app, no_exception, tune, workspace  # noqa: F401  (fixture)


def _noise_png() -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_try_photos_then_export_onnx_and_measure_latency(workspace, tmp_path):  # noqa: F811
    project = make_project(workspace, tmp_path, per_class=12)  # 27 test photos: enough to calibrate
    at = new_app()
    tune(at, project.id)
    at.switch_page("pages/4_export.py")
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
    assert set(table["Class"]) <= {"blue", "green", "red"}
    assert set(table["Unknown"]) <= {"unknown: check by hand", "no"}
    assert all(isinstance(v, str) and v.endswith("%") for v in table["Confidence"])
    assert any("broken.png" in w for w in (str(e.value) for e in at.warning))

    at.button(key="make-onnx").click()
    at.run()
    no_exception(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Download model.onnx and model.json (ZIP)" in labels  # the ZIP's contents: test_line_system

    at.button(key="run-bench").click()
    at.run()
    no_exception(at)
    bench = at.dataframe[-1].value
    assert set(bench["Engine"]) == {"torch", "onnx"} and set(bench["Batch"]) == {1, 32}
    assert (bench["ms per photo"] > 0).all() and (bench["Peak memory (MB)"] > 0).all()
