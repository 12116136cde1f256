"""The package's shape: a light top-level import and a public API that resolves."""

import json
import subprocess
import sys

import pytest

import dapt_core


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(done.stdout)}


def test_importing_the_package_and_its_subpackages_loads_no_heavy_dependency():
    loaded = _modules_after("import dapt_core, dapt_core.engine, dapt_core.data, dapt_core.studio, "
                            "dapt_core.bench, dapt_core.demo, dapt_core.deploy")
    assert not loaded & {"torch", "umap", "plotly", "streamlit", "open_clip"}


def test_the_cli_and_the_engine_need_neither_umap_nor_plotly():
    # umap-learn and plotly are the app's extras (pyproject's `app`), not dependencies of the library.
    loaded = _modules_after("import dapt_core.cli, dapt_core.engine.experiment, dapt_core.engine.inference, "
                            "dapt_core.bench.runner")
    assert "torch" in loaded  # the statement did reach the engine
    assert not loaded & {"umap", "plotly", "streamlit"}


def test_the_run_settings_and_the_names_of_the_loss_terms_need_no_torch():
    # the command line validates a TuningConfig, and the run's health reads a history, before torch loads
    loaded = _modules_after("import dapt_core.engine.methods, dapt_core.engine.augmentation_presets, "
                            "dapt_core.engine.loss_terms, dapt_core.engine.run_health")
    assert "dapt_core" in loaded
    assert not loaded & {"torch", "open_clip", "torchvision"}


def test_a_line_pc_runs_the_onnx_export_and_folders_to_csv_without_torch():
    # what `pip install onnxruntime pillow numpy` plus this package gives a line PC
    loaded = _modules_after("from dapt_core import OnnxClassifier, Decision, Prediction, predict_paths, write_csv")
    assert "PIL" in loaded and "numpy" in loaded  # the statement did reach the runner
    assert not loaded & {"torch", "open_clip", "umap", "plotly", "streamlit"}


@pytest.mark.parametrize("name", dapt_core.__all__)
def test_every_public_name_resolves(name):
    assert getattr(dapt_core, name) is not None


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        dapt_core.no_such_thing  # noqa: B018
