import pytest
import torch
from conftest import register_tiny

from dapt_core.data.folders import load_split
from dapt_core.engine import device as devices
from dapt_core.engine.backbone import DEMO, load_backbone, load_backbone_or_demo
from dapt_core.engine.methods import TuningConfig
from dapt_core.engine.training import tune
from dapt_core.errors import BackboneUnavailable, ConfigError

TINY_RESNET = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


@pytest.mark.parametrize("offline", ["1", "0"])
def test_unreachable_pretrained_weights_fail_without_a_download_and_say_what_to_do(monkeypatch, offline):
    from dapt_core.engine import backbone as backbone_module

    # "0": no offline flag, so the loader has to find out by itself that the weights' host cannot be
    # reached. The network is made unreachable here, so the test means the same on a connected machine.
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    probed = []

    def unreachable(address, *args, **kwargs):
        probed.append(address[0])
        raise OSError("Network is unreachable")

    real_create_model = backbone_module.open_clip.create_model

    def no_download(name, pretrained=None, **kwargs):
        assert pretrained != "openai", "the loader tried to download weights"
        return real_create_model(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(backbone_module.socket, "create_connection", unreachable)
    monkeypatch.setattr(backbone_module.open_clip, "create_model", no_download)
    with pytest.raises(BackboneUnavailable) as error:
        load_backbone("ViT-B-16:openai", "cpu")
    assert len(probed) == (0 if offline == "1" else 1)  # the offline flag is trusted without a probe
    message = str(error.value)
    assert "vit_base_patch16_clip_224.openai" in message  # what was looked for
    assert "ViT-B-16-quickgelu:/path/to/weights" in message  # how to supply a local copy
    assert "'demo'" in message and "offline" in message


def test_unknown_names_tags_and_files_are_explained():
    with pytest.raises(BackboneUnavailable, match="Unknown open_clip architecture"):
        load_backbone("ViT-Q-99:openai")
    with pytest.raises(BackboneUnavailable, match="Known tags: .*openai"):
        load_backbone("ViT-B-16:no-such-tag")
    with pytest.raises(BackboneUnavailable, match="Weights file not found"):
        load_backbone("ViT-B-16:/nowhere/weights.pt")
    with pytest.raises(BackboneUnavailable, match="needs a tag"):
        load_backbone("ViT-B-16")


def test_weights_from_a_local_file_are_identified_by_hash(tmp_path, tiny_backbone):
    from safetensors.torch import save_file
    weights = tmp_path / "weights.safetensors"
    save_file(dict(tiny_backbone.model.state_dict()), str(weights))
    name = tiny_backbone.spec.split(":")[0]
    loaded = load_backbone(f"{name}:{weights}", "cpu")
    assert loaded.weights_id.startswith("sha256:") and len(loaded.weights_id) == 7 + 64
    assert all(torch.equal(a, b) for a, b in zip(loaded.model.state_dict().values(),
                                                  tiny_backbone.model.state_dict().values()))


def test_every_backbone_weight_is_frozen(tiny_backbone):
    assert not any(p.requires_grad for p in tiny_backbone.model.parameters())
    assert not tiny_backbone.model.training


def test_resnet_backbone_takes_text_prompts_and_refuses_visual_ones(tmp_path, colour_task):
    register_tiny(tmp_path, "dapt-tiny-resnet", TINY_RESNET)
    backbone = load_backbone("dapt-tiny-resnet:random", "cpu")
    assert not backbone.supports_visual_prompt and backbone.supports_text_prompt
    split = load_split(colour_task, shots=2, seed=1)
    result = tune(backbone, split.classnames, split.train, TuningConfig(method="coop", epochs=2))
    assert set(result.prompted.prompt_tensors()) == {"text_ctx"}
    for method in ("vpt", "dapt"):
        with pytest.raises(ConfigError, match="cannot take visual prompts.*coop"):
            tune(backbone, split.classnames, split.train, TuningConfig(method=method, epochs=1))


def test_device_order_is_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_mps_available", lambda: False)
    assert devices.pick_device().type == "cpu"
    monkeypatch.setattr(devices, "_mps_available", lambda: True)
    assert devices.pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.pick_device().type == "cuda"
    assert devices.pick_device("cpu").type == "cpu"  # an explicit choice wins


def test_requesting_a_missing_gpu_says_to_use_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--device cpu"):
        devices.pick_device("cuda")


def test_precision_is_fp32_on_a_cpu_where_bf16_does_not_pay_and_reduced_on_cuda(monkeypatch):
    monkeypatch.setenv(devices.PRECISION_ENV, "auto")  # the product's default, not the tests' fp32
    assert devices.autocast_dtype(torch.device("cpu"), 768, lambda: False) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert devices.autocast_dtype(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert devices.autocast_dtype(torch.device("cuda")) == torch.float16


def test_unavailable_real_weights_fall_back_to_demo_with_one_notice():
    backbone, notice = load_backbone_or_demo("ViT-B-16:openai", "cpu")
    assert backbone.spec == DEMO
    assert notice.startswith("Using the offline demo model instead of 'ViT-B-16:openai'")
    same, none = load_backbone_or_demo(DEMO, "cpu")
    assert same.spec == DEMO and none is None
