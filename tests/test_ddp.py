"""`dapt bench` under `torchrun --nproc_per_node 2` (gloo, CPU) gives the single-process result.

Both runs train DAPT (text and visual prompts, all three loss terms) on the same tiny fake EuroSAT with a
global batch of 5, which the two ranks split 3 + 2, and evaluate in batches of 4 shared between the ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import TINY, TINY_CONFIG
from safetensors.torch import load_file
from test_bench import build_colour_benchmark

from dapt_core.cli import main
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.training import build_model

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 1e-5  # relative to the largest value of a tensor: float32 summation-order noise only


def torchrun() -> list[str]:
    script = Path(sys.executable).with_name("torchrun")
    return [str(script)] if script.exists() else [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch.distributed with gloo is needed")
def test_torchrun_two_processes_match_the_single_process_run(tmp_path, tiny_spec, tiny_backbone, capsys):
    data = tmp_path / "data"
    build_colour_benchmark(data, "EuroSAT", {"train": 4, "val": 1, "test": 5})
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / f"{TINY}.json").write_text(json.dumps(TINY_CONFIG))
    args = ["bench", "--data-root", str(data), "--dataset", "EuroSAT", "--shots", "4", "--seeds", "1",
            "--method", "dapt", "--backbone", tiny_spec, "--epochs", "3", "--lr", "0.5", "--batch-size", "5",
            "--eval-batch-size", "4", "--workers", "0"]

    assert main([*args, "--out", str(tmp_path / "single")]) == 0
    capsys.readouterr()
    env = {**os.environ, "DAPT_MODEL_CONFIGS": str(configs), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TMPDIR": str(tmp_path)}  # torchrun leaves a torchelastic_* log folder in the temp folder
    done = subprocess.run([*torchrun(), "--standalone", "--nproc_per_node", "2", "-m", "dapt_core.cli", *args,
                           "--out", str(tmp_path / "ddp")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("EuroSAT dapt 4-shot seed 1: ") == 1  # rank 0 alone reports and writes
    single_dir = tmp_path / "single" / "EuroSAT" / "dapt" / "4shot"
    ddp_dir = tmp_path / "ddp" / "EuroSAT" / "dapt" / "4shot"
    assert sorted(p.relative_to(tmp_path / "ddp") for p in (tmp_path / "ddp").rglob("*")) == \
        sorted(p.relative_to(tmp_path / "single") for p in (tmp_path / "single").rglob("*"))
    single, ddp = json.loads((single_dir / "seed1.json").read_text()), json.loads((ddp_dir / "seed1.json").read_text())
    assert (single["settings"]["world_size"], ddp["settings"]["world_size"]) == (1, 2)

    one, two = load_file(single_dir / "seed1.safetensors"), load_file(ddp_dir / "seed1.safetensors")
    assert sorted(one) == sorted(two) == ["class_embeddings", "text_ctx", "visual_prompt"]
    initial = build_model(tiny_backbone, single["classnames"], TuningConfig(method="dapt", seed=1)).prompt_tensors()
    differences = {}
    for name in one:
        scale = float(one[name].abs().max())
        differences[name] = float((one[name] - two[name]).abs().max())
        assert differences[name] <= TOLERANCE * max(1.0, scale), (name, differences[name], scale)
        if name in initial:  # the prompts did move, far more than the tolerance: the comparison means something
            assert float((one[name] - initial[name]).abs().max()) > 1000 * TOLERANCE * max(1.0, scale)
    print(f"max |single - ddp| per tensor: {differences}")

    assert ddp["accuracy"] == single["accuracy"] and ddp["zero_shot_accuracy"] == single["zero_shot_accuracy"]
    assert ddp["per_class_accuracy"] == single["per_class_accuracy"]
    assert ddp["n_test"] == single["n_test"] == 15 and ddp["n_train"] == single["n_train"] == 12
    for a, b in zip(single["history"], ddp["history"]):  # per-epoch losses and accuracy over the whole batch
        assert b["train_accuracy"] == a["train_accuracy"]
        for key in ("loss", "ce", "intra", "inter"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), (a["epoch"], key)
    for part in ("before", "after"):
        for key, value in single["dispersion"][part].items():
            assert ddp["dispersion"][part][key] == pytest.approx(value, rel=1e-4)
