"""ConvNeXt trunk: torchvision key names and shapes, stride/channels, and loading a
torchvision-keyed ConvNeXt-Tiny state dict (fabricated here with the same names/shapes)."""

import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models.convnext import (
    ConvNeXtTrunk, convnext_state_dict_template, load_convnext_state_dict, read_state_dict,
)

#: What torchvision's convnext_tiny state dict holds (names and shapes checked against
#: torchvision/models/convnext.py: CNBlock.block = [dwconv, Permute, LayerNorm, Linear, GELU, Linear, Permute]).
TORCHVISION_TINY = {
    "features.0.0.weight": (96, 3, 4, 4), "features.0.0.bias": (96,),
    "features.0.1.weight": (96,), "features.0.1.bias": (96,),
    "features.1.0.block.0.weight": (96, 1, 7, 7), "features.1.0.block.0.bias": (96,),
    "features.1.0.block.2.weight": (96,), "features.1.0.block.2.bias": (96,),
    "features.1.0.block.3.weight": (384, 96), "features.1.0.block.3.bias": (384,),
    "features.1.0.block.5.weight": (96, 384), "features.1.0.block.5.bias": (96,),
    "features.1.0.layer_scale": (96, 1, 1),
    "features.2.0.weight": (96,), "features.2.0.bias": (96,),
    "features.2.1.weight": (192, 96, 2, 2), "features.2.1.bias": (192,),
    "features.5.8.block.3.weight": (1536, 384), "features.5.8.layer_scale": (384, 1, 1),
    "features.6.1.weight": (768, 384, 2, 2), "features.7.2.block.5.weight": (768, 3072),
    "classifier.0.weight": (768,), "classifier.2.weight": (1000, 768), "classifier.2.bias": (1000,),
}


@pytest.fixture(scope="module")
def tiny_template():
    return convnext_state_dict_template()


def test_full_tiny_has_torchvision_keys_and_shapes(tiny_template):
    for key, shape in TORCHVISION_TINY.items():
        assert tiny_template[key] == shape, key
    # 4 stem/norm tensors, 18 blocks x 9 tensors, 3 downsamples x 4, classifier 4
    assert len(tiny_template) == 4 + 18 * 9 + 3 * 4 + 4
    blocks_stage3 = {k.split(".")[2] for k in tiny_template if k.startswith("features.5.")}
    assert len(blocks_stage3) == 9


def test_trunk_cut_after_stage3_gives_384_channels_at_stride_16():
    with torch.device("meta"):
        trunk = ConvNeXtTrunk()
    assert trunk.out_channels == 384 and trunk.stride == 16 and len(trunk.features) == 6
    assert not any(k.startswith(("features.6", "features.7", "classifier")) for k in trunk.state_dict())
    small = ConvNeXtTrunk((8, 16, 32), (1, 1, 1))
    assert small(torch.randn(2, 3, 64, 96)).shape == (2, 32, 4, 6)


def _fabricated_torchvision_file(path, template, seed=0):
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(*shape, generator=gen) for k, shape in template.items()}
    torch.save(state, path)
    return state


def test_load_torchvision_state_dict_ignores_stage4_and_classifier(tmp_path):
    # torchvision's Tiny key names (depths 3, 3, 9, 3 + classifier) at 1/12 of the widths: a small file
    template = convnext_state_dict_template(dims=(8, 16, 32, 64), depths=(3, 3, 9, 3), num_classes=10)
    state = _fabricated_torchvision_file(tmp_path / "convnext_tiny.pth", template)
    trunk = ConvNeXtTrunk((8, 16, 32), (3, 3, 9))
    report = load_convnext_state_dict(trunk, read_state_dict(tmp_path / "convnext_tiny.pth"))
    ours = trunk.state_dict()
    assert report.loaded == len(ours) and not report.missing and not report.unexpected
    assert all(k.startswith(("features.6", "features.7", "classifier")) for k in report.ignored)
    assert len(report.ignored) == len(template) - len(ours) == 3 * 9 + 4 + 4
    for key in ("features.0.0.weight", "features.5.8.layer_scale", "features.4.1.weight"):
        assert torch.equal(ours[key], state[key])


def test_load_reports_missing_and_unexpected_and_rejects_wrong_shapes(tmp_path):
    trunk = ConvNeXtTrunk((8, 16), (1, 1))
    state = {k: v.clone() for k, v in trunk.state_dict().items()}
    state.pop("features.1.0.layer_scale")
    state["features.1.0.extra"] = torch.zeros(1)
    state = {"model": state}  # wrapped like many training checkpoints
    torch.save(state, tmp_path / "w.pth")
    report = load_convnext_state_dict(trunk, read_state_dict(tmp_path / "w.pth"))
    assert report.missing == ["features.1.0.layer_scale"] and report.unexpected == ["features.1.0.extra"]
    bad = {"features.0.0.weight": torch.zeros(96, 3, 4, 4)}
    with pytest.raises(CvglError, match="another ConvNeXt size"):
        load_convnext_state_dict(trunk, bad)
    with pytest.raises(CvglError, match="no ConvNeXt weight matched"):
        load_convnext_state_dict(trunk, {"stages.0.0.dwconv.weight": torch.zeros(1)})
    with pytest.raises(CvglError, match="not found"):
        read_state_dict(tmp_path / "missing.pth")
