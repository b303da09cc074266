import pytest
import torch

from edgeprune.errors import UserError
from edgeprune.models import create_model, list_models, model_input_size
from edgeprune.models.cifar_resnet import ShortcutA
from edgeprune.models.registry import register_model
from edgeprune.surgery import load_model

SHARED = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared"


def test_registry_lists_and_rejects_duplicates():
    assert {"resnet20", "resnet56", "resnet110", "vgg16_bn_cifar", "mobilenetv2_cifar"} <= set(
        list_models("*", torchvision=False)
    )
    assert "torchvision:resnet50" in list_models("torchvision:resnet5*")
    with pytest.raises(ValueError):
        register_model("resnet56")(lambda: None)
    with pytest.raises(UserError):
        create_model("no-such-model")
    with pytest.raises(UserError):
        create_model("torchvision:no-such-model")


@pytest.mark.parametrize(
    "name,params",
    [
        ("resnet20", 0.27e6),
        ("resnet32", 0.46e6),
        ("resnet44", 0.66e6),
        ("resnet56", 0.85e6),
        ("resnet110", 1.7e6),
    ],
)
def test_cifar_resnet_param_counts(name, params):
    model = create_model(name)
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) / params < 0.03
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_other_models_forward():
    for name in ["vgg16_bn_cifar", "mobilenetv2_cifar", "resnet8", "vgg_tiny", "mobilenetv2_tiny"]:
        assert create_model(name)(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    assert model_input_size("torchvision:resnet50") == (3, 224, 224)


def test_shortcut_a_matches_option_a_padding():
    x = torch.randn(2, 16, 8, 8)
    ref = torch.nn.functional.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, 8, 8))
    assert torch.equal(ShortcutA(16, 32, 2)(x), ref)
    sc = ShortcutA(16, 32, 2)
    sc.set_index_(torch.tensor([0, 5, -1, 7] + list(range(20, 32))), 32)
    sc.in_channels = 16
    out = sc(x)
    assert torch.equal(out[:, 0], x[:, 0, ::2, ::2]) and torch.equal(out[:, 5], x[:, 1, ::2, ::2])
    assert torch.count_nonzero(out[:, 1:5]) == 0


@pytest.mark.parametrize("depth,sha", [(20, "12fca82f"), (56, "4bfd9763")])
def test_pretrained_checkpoints_load_strict(depth, sha):
    path = SHARED / "weights" / "cifar10" / f"resnet{depth}-{sha}.th"
    if not path.exists():
        pytest.skip("../shared weights not present")
    lm = load_model(f"resnet{depth}", str(path))
    assert lm.source == "registry" and lm.input_size == (3, 32, 32)


def test_weights_from_file_url(tmp_path, monkeypatch):
    path = SHARED / "weights" / "cifar10" / "resnet20-12fca82f.th"
    if not path.exists():
        pytest.skip("../shared weights not present")
    monkeypatch.setenv("EDGEPRUNE_CACHE", str(tmp_path))
    lm = load_model("resnet20", path.as_uri())
    assert [p.name for p in (tmp_path / "weights").glob("*/*")] == [path.name]  # per-URL dir
    ref = load_model("resnet20", str(path)).model
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(lm.model(x), ref(x))


def test_bad_weights_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_model("resnet20", str(tmp_path / "missing.th"))
    torch.save({"state_dict": create_model("resnet8").state_dict()}, tmp_path / "w.th")
    with pytest.raises(UserError, match="does not fit"):
        load_model("resnet20", str(tmp_path / "w.th"))
