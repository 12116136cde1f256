import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY_CONFIG, write_colour_task

from dapt_core.cli import main
from dapt_core.engine import prompt_file

DAPT = str(Path(sys.executable).with_name("dapt"))


@pytest.fixture
def data(tmp_path):
    root = write_colour_task(tmp_path / "data", per_class=8)
    (root / "red" / "broken.jpg").write_bytes(b"not an image at all")
    (root / "blue" / "empty.png").write_bytes(b"")
    return root


def tune(tiny_spec, data, out, *extra):
    return main(["tune", str(data), "--backbone", tiny_spec, "--shots", "3", "--epochs", "2",
                 "--out", str(out), *extra])


def test_tune_writes_prompt_file_and_metrics_json(tiny_spec, data, tmp_path, capsys):
    out, metrics_path = tmp_path / "p.safetensors", tmp_path / "m.json"
    assert tune(tiny_spec, data, out, "--json", str(metrics_path), "--method", "dapt") == 0
    metrics = json.loads(metrics_path.read_text())
    assert metrics["method"] == "dapt" and metrics["backbone"] == tiny_spec and metrics["shots"] == 3
    assert metrics["n_train"] == 9 and metrics["n_test"] == 15  # 24 good images, 3 per class to train
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["zero_shot_accuracy"] <= 1
    assert set(metrics["per_class"]) == {"blue", "green", "red"}
    for when in ("before", "after"):
        assert metrics["dispersion"][when]["intra"] > 0 and metrics["dispersion"][when]["inter"] > 0
    assert metrics["train_seconds"] > 0
    reasons = {Path(s["path"]).name: s["reason"] for s in metrics["skipped"]}
    assert reasons == {"broken.jpg": reasons["broken.jpg"], "empty.png": "empty file"}
    assert "not an image" in reasons["broken.jpg"]
    assert prompt_file.load(out).classnames == ["blue", "green", "red"]
    printed = capsys.readouterr()
    assert "zero-shot" in printed.out and "prompt file:" in printed.out
    assert "broken.jpg" in printed.err  # skipped files are listed, the good ones used


def test_eval_predict_info_on_the_tuned_file(tiny_spec, tmp_path, capsys):
    root = tmp_path / "split"
    write_colour_task(root / "train", per_class=3, seed=1)
    write_colour_task(root / "test", per_class=5, seed=2)
    out, tuned_json, eval_json = tmp_path / "p.safetensors", tmp_path / "t.json", tmp_path / "e.json"
    assert tune(tiny_spec, root, out, "--json", str(tuned_json)) == 0
    assert main(["eval", str(out), str(root), "--json", str(eval_json)]) == 0
    tuned, evaluated = json.loads(tuned_json.read_text()), json.loads(eval_json.read_text())
    assert evaluated["n_test"] == tuned["n_test"] == 15  # the test/ folder, not train/
    assert evaluated["accuracy"] == pytest.approx(tuned["accuracy"])
    assert evaluated["zero_shot_accuracy"] == pytest.approx(tuned["zero_shot_accuracy"])
    capsys.readouterr()

    image = root / "test" / "red" / "red_000.png"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["predict", str(out), str(image), str(broken), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in result["predictions"]] == [str(image)]
    assert result["predictions"][0]["label"] in {"blue", "green", "red"}
    assert result["skipped"][0]["path"] == str(broken) and result["skipped"][0]["reason"]

    assert main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert tiny_spec in info and "blue, green, red" in info and "dapt" in info


def test_scan_lists_usable_and_skipped_with_reasons(data, capsys):
    assert main(["scan", str(data), "--json"]) == 0
    scan = json.loads(capsys.readouterr().out)
    assert {name: len(paths) for name, paths in scan["parts"]["all"].items()} == {"blue": 8, "green": 8, "red": 8}
    assert {Path(s["path"]).name for s in scan["skipped"]} == {"broken.jpg", "empty.png"}


def test_folder_of_only_broken_images_is_a_readable_error(tiny_spec, tmp_path, capsys):
    for name in ("ok", "bad"):
        (tmp_path / "data" / name).mkdir(parents=True)
        (tmp_path / "data" / name / "a.jpg").write_bytes(b"\xff\xd8\xff broken")
        (tmp_path / "data" / name / "b.png").write_text("hello")
    assert tune(tiny_spec, tmp_path / "data", tmp_path / "p.safetensors") == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("dapt: error:") and "Traceback" not in err
    assert "dapt scan" in err
    assert not (tmp_path / "p.safetensors").exists()
    assert main(["scan", str(tmp_path / "data")]) == 0
    assert capsys.readouterr().out.count("a.jpg") == 2


def test_fewer_images_than_shots_tunes_with_what_there_is(tiny_spec, tmp_path, capsys):
    root = write_colour_task(tmp_path / "data", per_class=3)
    out = tmp_path / "p.safetensors"
    for item in (root / "red").iterdir():
        if item.name != "red_000.png":
            item.unlink()
    assert main(["tune", str(root), "--backbone", tiny_spec, "--shots", "2", "--epochs", "1",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "class 'red' has only 1 training image" in err and "class 'red' has no test images" in err
    assert prompt_file.load(out).classnames == ["blue", "green", "red"]


def test_prompt_file_for_another_class_list_is_explained(tiny_spec, data, tmp_path, capsys):
    out = tmp_path / "p.safetensors"
    assert tune(tiny_spec, data, out) == 0
    other = tmp_path / "other"
    shutil.copytree(data, other)
    (other / "red").rename(other / "scratch")
    capsys.readouterr()
    assert main(["eval", str(out), str(other)]) == 2
    err = capsys.readouterr().err
    assert "'scratch'" in err and "Rename or remove" in err


def test_user_errors_exit_2_with_one_line_and_debug_shows_the_traceback(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    plain = subprocess.run([DAPT, "tune", str(tmp_path / "missing"), "--out", "x.safetensors"],
                           capture_output=True, text=True, env=env)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [f"dapt: error: folder not found: {tmp_path / 'missing'}"]
    debug = subprocess.run([DAPT, "info", str(tmp_path / "missing.safetensors"), "--debug"],
                           capture_output=True, text=True, env=env)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_cli_runs_in_a_fresh_process_with_a_registered_architecture(tmp_path):
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "cli-tiny.json").write_text(json.dumps(TINY_CONFIG))
    data = write_colour_task(tmp_path / "data", per_class=4)
    env = dict(os.environ, HF_HUB_OFFLINE="1", DAPT_MODEL_CONFIGS=str(configs))
    out = tmp_path / "p.safetensors"
    run = subprocess.run([DAPT, "tune", str(data), "--backbone", "cli-tiny:random", "--shots", "2",
                          "--epochs", "1", "--method", "coop", "--out", str(out)],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stderr
    predicted = subprocess.run([DAPT, "predict", str(out), str(data / "red" / "red_003.png")],
                               capture_output=True, text=True, env=env)
    assert predicted.returncode == 0 and predicted.stdout.split("\t")[1] in {"red", "green", "blue"}
