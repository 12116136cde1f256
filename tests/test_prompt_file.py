import json

import pytest
import torch
from conftest import TINY_CONFIG, register_tiny
from safetensors import safe_open
from safetensors.torch import save_file

from dapt_core import Classifier
from dapt_core.data.folders import load_split
from dapt_core.data.images import sha256_of
from dapt_core.engine import prompt_file
from dapt_core.engine.backbone import load_backbone
from dapt_core.engine.experiment import run_experiment
from dapt_core.engine.methods import TuningConfig
from dapt_core.errors import PromptFileError


@pytest.fixture(scope="module")
def tuned(tiny_backbone, tmp_path_factory):
    from conftest import write_colour_task
    root = write_colour_task(tmp_path_factory.mktemp("data") / "colours")
    split = load_split(root, shots=4, seed=1)
    result = run_experiment(tiny_backbone, split, TuningConfig(method="dapt", epochs=3, lr=0.01, batch_size=4))
    path = result.save_prompt_file(tmp_path_factory.mktemp("out") / "prompts.safetensors")
    return result, path


def test_loaded_file_reproduces_the_tuned_logits_exactly(tuned, tiny_backbone):
    result, path = tuned
    classifier = Classifier.load(path, backbone=tiny_backbone)
    logits = classifier.logits(result.after.paths)
    assert torch.allclose(logits, result.after.logits, atol=1e-5, rtol=0)
    assert torch.equal(logits.argmax(1), result.after.predictions)
    predictions = classifier.predict(result.after.paths[:2])
    assert [p.label for p in predictions] == [result.split.classnames[int(i)] for i in result.after.predictions[:2]]
    assert abs(sum(predictions[0].probabilities.values()) - 1) < 1e-5


def test_header_describes_the_run(tuned, tiny_backbone):
    result, path = tuned
    header = prompt_file.load(path).header
    assert header["format_version"] == prompt_file.FORMAT_VERSION
    assert header["backbone"]["spec"] == tiny_backbone.spec and header["backbone"]["weights"] == "random"
    assert header["classnames"] == result.split.classnames
    assert header["method"] == "dapt" and header["config"]["lr"] == 0.01 and header["seed"] == 1
    assert header["preprocessing"]["size"] == 32 and header["preprocessing"]["interpolation"] == "bicubic"
    assert header["metrics"]["accuracy"] == pytest.approx(result.after.accuracy)
    assert header["metrics"]["dispersion"]["before"]["intra"] > 0
    hashes = {entry["sha256"] for entry in header["training_images"]}
    assert hashes == {sha256_of(item.path) for item in result.split.train}
    assert header["created"].endswith("+00:00")


def test_file_is_plain_safetensors_without_pickle(tuned):
    _, path = tuned
    data = path.read_bytes()
    length = int.from_bytes(data[:8], "little")
    outer = json.loads(data[8:8 + length])
    entries = {name: entry for name, entry in outer.items() if name != "__metadata__"}
    assert set(entries) == {"class_embeddings", "text_ctx", "visual_prompt", "novelty_class_means",
                            "drift_reference_features"}
    assert isinstance(json.loads(outer["__metadata__"]["dapt"]), dict)  # the header is JSON
    # After the JSON header come the raw tensor bytes and nothing else: no room for a pickle.
    extents = sorted(entry["data_offsets"] for entry in entries.values())
    assert extents[0][0] == 0 and all(a[1] == b[0] for a, b in zip(extents, extents[1:]))
    assert 8 + length + extents[-1][1] == len(data)
    # safetensors' own reader sees the tensors the prompt-file loader returns
    loaded = prompt_file.load(path).tensors
    with safe_open(str(path), "pt") as plain:
        assert sorted(plain.keys()) == sorted(loaded)
        assert all(torch.equal(plain.get_tensor(name), loaded[name]) for name in loaded)


def _rewrite(path, tmp_path, header_change=None, drop=None):
    file = prompt_file.load(path)
    header = dict(file.header)
    if header_change:
        header.update(header_change)
    tensors = {k: v for k, v in file.tensors.items() if k != drop}
    out = tmp_path / "changed.safetensors"
    out.write_bytes(prompt_file.to_bytes(header, tensors))
    if drop:  # to_bytes lists the tensors it was given; claim the dropped one is there
        data = out.read_bytes()
        length = int.from_bytes(data[:8], "little")
        outer = json.loads(data[8:8 + length])
        inner = json.loads(outer["__metadata__"]["dapt"])
        inner["tensors"].append(drop)
        outer["__metadata__"]["dapt"] = json.dumps(inner)
        new_header = json.dumps(outer).encode()
        new_header += b" " * ((8 - len(new_header) % 8) % 8)
        out.write_bytes(len(new_header).to_bytes(8, "little") + new_header + data[8 + length:])
    return out


def test_not_a_prompt_file(tmp_path):
    junk = tmp_path / "photo.safetensors"
    junk.write_bytes(b"\xff\xd8\xff\xe0 this is a jpeg really")
    with pytest.raises(PromptFileError, match="not a DAPT prompt file"):
        prompt_file.load(junk)
    with pytest.raises(PromptFileError, match="not a DAPT prompt file"):
        prompt_file.load(b"{}")


def test_model_weights_are_not_a_prompt_file(tmp_path):
    weights = tmp_path / "open_clip_model.safetensors"
    save_file({"visual.proj": torch.zeros(2, 2)}, str(weights))
    with pytest.raises(PromptFileError, match="no DAPT header"):
        prompt_file.load(weights)


def test_newer_format_version_asks_for_an_upgrade(tuned, tmp_path):
    _, path = tuned
    with pytest.raises(PromptFileError, match="newer DAPT Studio"):
        prompt_file.load(_rewrite(path, tmp_path, {"format_version": 99}))


def test_missing_tensor_is_named(tuned, tmp_path):
    _, path = tuned
    with pytest.raises(PromptFileError, match="visual_prompt"):
        prompt_file.load(_rewrite(path, tmp_path, drop="visual_prompt"))


def test_other_embedding_width_is_explained(tuned, tmp_path):
    _, path = tuned
    wide = dict(TINY_CONFIG, embed_dim=48)
    register_tiny(tmp_path, "dapt-tiny-wide", wide)
    other = load_backbone("dapt-tiny-wide:random", "cpu")
    with pytest.raises(PromptFileError, match="48"):
        Classifier.load(path, backbone=other)


def test_other_weights_of_the_same_shape_are_refused(tuned, tmp_path, tiny_backbone):
    _, path = tuned
    weights = tmp_path / "other.safetensors"
    state = {k: v + 0.01 for k, v in tiny_backbone.model.state_dict().items()}
    save_file(state, str(weights))
    other = load_backbone(f"{tiny_backbone.spec.split(':')[0]}:{weights}", "cpu")
    with pytest.raises(PromptFileError, match="exact weights"):
        Classifier.load(path, backbone=other)
