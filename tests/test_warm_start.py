"""A warm start (engine/warm_start.py, `dapt tune --from`): continue from a prompt file with classes or photos added."""

import hashlib
import json
from dataclasses import replace

import pytest
import torch
from conftest import TINY_CONFIG, register_tiny, write_colour_task

from dapt_core.cli import main
from dapt_core.data.folders import load_split
from dapt_core.engine import prompt_file
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.training import build_model, tune
from dapt_core.engine.tuning_run import tune_and_evaluate
from dapt_core.engine.warm_start import WarmStart, warm_schedule
from dapt_core.errors import ConfigError, PromptFileError
from dapt_core.studio.workspace import Workspace


@pytest.fixture
def split(colour_task):
    return load_split(colour_task, shots=4, seed=1)


def test_a_warm_start_resumes_at_the_stored_loss(tiny_backbone, split):
    config = TuningConfig(method="dapt", epochs=15, lr=0.002, batch_size=4)
    stored = tune(tiny_backbone, split.classnames, split.train, config)
    warm_config = replace(config, epochs=2, warmup_epochs=0)
    warm = tune(tiny_backbone, split.classnames, split.train, warm_config,
                init_from=stored.prompted.prompt_tensors())
    fresh = tune(tiny_backbone, split.classnames, split.train, warm_config)
    last, resumed, first = stored.history[-1]["loss"], warm.history[0]["loss"], fresh.history[0]["loss"]
    assert abs(resumed - last) < 0.1 * last  # where the stored run ended...
    assert first - resumed > 5 * abs(resumed - last)  # ...far below a fresh start's first epoch


def test_the_warm_schedule_is_a_share_of_the_recipe_without_warm_up():
    config, recipe = warm_schedule(TuningConfig(method="dapt"), shots=16)
    assert recipe == 200 and config.epochs == 50 and config.warmup_epochs == 0
    assert warm_schedule(config, shots=16)[0] == config  # applying it twice changes nothing
    assert warm_schedule(TuningConfig(method="dapt", epochs=7), shots=16)[0].epochs == 7  # --epochs is kept


def test_a_new_class_is_added_from_a_saved_prompt_file(tiny_backbone, split, tmp_path):
    old = split.without_class("blue")
    stored = run_experiment(tiny_backbone, old, TuningConfig(method="dapt", epochs=2, lr=0.002, batch_size=4))
    path = stored.save_prompt_file(tmp_path / "two.safetensors")
    start = WarmStart.load(path)
    config = TuningConfig(method="dapt", epochs=1, lr=0.002, batch_size=4)
    model = build_model(tiny_backbone, split.classnames, config, init_from=start)
    assert torch.equal(model.text_ctx.detach().cpu(), stored.tuning.prompted.text_ctx.detach().cpu())
    assert torch.equal(model.visual_prompt.detach().cpu(), stored.tuning.prompted.visual_prompt.detach().cpu())
    assert model.text_features().shape[0] == 3  # the shared context serves the new class too

    run = tune_and_evaluate(tiny_backbone, split, config, init_from=path, lr_choice="quick")
    record = run.metrics()["warm_start"]
    assert record["from"] == "two.safetensors"
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["classnames"] == ["green", "red"] and record["new_classes"] == ["blue"]
    assert run.result.config.warmup_epochs == 0 and run.selection.how == "scaled"  # no trial runs from scratch
    assert set(run.metrics()["per_class"]) == {"blue", "green", "red"}
    assert record["new_class_photos_repeated"] == 1  # a quarter of blue's 4 photos is trained twice an epoch
    saved = prompt_file.load(run.result.save_prompt_file(tmp_path / "three.safetensors", run.prompt_extra()))
    assert saved.header["warm_start"]["sha256"] == record["sha256"]


def test_only_a_new_classs_photos_are_trained_a_second_time_and_the_seed_picks_them(split):
    from dapt_core.engine.warm_start import new_class_emphasis

    blue = split.classnames.index("blue")
    picked = new_class_emphasis(split.train, split.classnames, ["green", "red"], seed=1, share=0.5)
    assert len(picked) == 2 and {item.label for item in picked} == {blue}
    assert picked == new_class_emphasis(split.train, split.classnames, ["green", "red"], seed=1, share=0.5)
    assert new_class_emphasis(split.train, split.classnames, split.classnames, seed=1) == []  # more photos only
    assert new_class_emphasis(split.train, split.classnames, [], seed=1) == []  # the file names no classes


def test_a_start_that_does_not_fit_is_refused_with_what_to_do(tiny_backbone, split, tmp_path):
    coop = run_experiment(tiny_backbone, split, TuningConfig(method="coop", epochs=1))
    start = WarmStart.load(coop.save_prompt_file(tmp_path / "coop.safetensors"))
    with pytest.raises(ConfigError, match="--method coop"):
        start.check(tiny_backbone, TuningConfig(method="dapt"))
    with pytest.raises(ConfigError, match="--n-ctx 16"):
        start.check(tiny_backbone, TuningConfig(method="coop", n_ctx=8))
    with pytest.raises(ConfigError, match="nothing to continue"):
        start.check(tiny_backbone, TuningConfig(method="zeroshot"))
    width = tiny_backbone.text_width
    with pytest.raises(ConfigError, match="class-specific"):
        WarmStart.of({"text_ctx": torch.zeros(3, 16, width)}).check(tiny_backbone, TuningConfig(method="coop"))
    deep = torch.zeros(2, 16, tiny_backbone.vision_width)
    with pytest.raises(ConfigError, match="--n-vis 16 with --deep"):
        WarmStart.of({"visual_prompt": deep}).check(tiny_backbone, TuningConfig(method="vpt"))
    with pytest.raises(ConfigError, match="needs"):  # build_model checks the shapes too
        build_model(tiny_backbone, split.classnames, TuningConfig(method="coop", n_ctx=4), init_from=start)

    other = load_backbone(register_tiny(tmp_path, "dapt-tiny-other", {**TINY_CONFIG, "embed_dim": 24}) + ":random",
                          "cpu")
    with pytest.raises(PromptFileError, match="Load it with backbone"):
        start.check(other, TuningConfig(method="coop"))


def test_dapt_tune_from_a_prompt_file(tiny_spec, tmp_path, capsys):
    data = write_colour_task(tmp_path / "data", per_class=6)
    first, second, metrics = tmp_path / "a.safetensors", tmp_path / "b.safetensors", tmp_path / "m.json"
    tune_args = ["tune", str(data), "--backbone", tiny_spec, "--shots", "3", "--no-check", "--good-class", "none"]
    assert main([*tune_args, "--epochs", "2", "--out", str(first)]) == 0
    assert main([*tune_args, "--from", str(first), "--out", str(second), "--json", str(metrics)]) == 0
    assert "warm start from a.safetensors" in capsys.readouterr().err
    header = prompt_file.load(second).header
    assert header["warm_start"]["from"] == "a.safetensors"
    assert header["warm_start"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert header["epochs"] == 25 and header["config"]["warmup_epochs"] == 0  # a quarter of the recipe's 100
    assert json.loads(metrics.read_text())["warm_start"]["new_classes"] == []

    assert main([*tune_args, "--from", str(first), "--method", "coop", "--out", str(tmp_path / "c.safetensors")]) == 2
    assert "--method dapt" in capsys.readouterr().err


def test_a_tuning_job_continues_a_saved_run(tmp_path, colour_task, tiny_spec):
    from dapt_core.studio import jobs
    from dapt_core.studio.job_queue import DONE, JobQueue

    ws = Workspace(tmp_path / "workspace")
    project = ws.create_project("Colours")
    for folder in sorted(colour_task.iterdir()):
        project.add_class(folder.name)
        project.add_image_paths(folder.name, sorted(folder.glob("*.png")))
    queue = JobQueue()
    settings = {"method": "dapt", "epochs": 2, "batch_size": 8}
    first = queue.submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec, settings, shots=4, device="cpu"))
    first.wait(120)
    assert first.snapshot().state == DONE, first.snapshot().error
    stored = first.snapshot().result["run_id"]
    second = queue.submit(jobs.TuneRequest(str(ws.root), project.id, tiny_spec, settings, shots=4, device="cpu",
                                           start_from_run=stored))
    second.wait(120)
    assert second.snapshot().state == DONE, second.snapshot().error
    record = project.run(second.snapshot().result["run_id"]).metrics["warm_start"]
    assert stored in record["from"]
    assert record["sha256"] == hashlib.sha256(project.run(stored).prompt_file.read_bytes()).hexdigest()


def test_the_tune_page_starts_from_a_saved_run(tmp_path, monkeypatch):
    from test_app import make_project, new_app, no_exception, tune, wait_for_jobs

    from dapt_core.studio import job_queue
    from ui import nav

    monkeypatch.setenv("DAPT_WORKSPACE", str(tmp_path / "workspace"))
    project = make_project(Workspace(tmp_path / "workspace"), tmp_path)
    at = new_app(nav.TUNE.path)
    stored = tune(at, project.id).result["run_id"]
    assert at.selectbox(key="tune-start-from").options[1:] and at.selectbox(key="tune-start-from").value == ""
    at.selectbox(key="tune-start-from").set_value(stored)
    at.run()
    at.button(key="start-tuning").click()
    at.run()
    no_exception(at)
    snaps = wait_for_jobs(project.id)
    assert snaps[-1].state == job_queue.DONE, snaps[-1].error
    assert stored in project.run(snaps[-1].result["run_id"]).metrics["warm_start"]["from"]
