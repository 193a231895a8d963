"""The torch-free preset catalogue (what `cvgl-edge models` lists) matches the PyTorch registry.

`models` no longer builds the networks (the deployment install has no PyTorch), so the numbers
in ``cvgl_edge.model_catalog`` are checked here against every built preset.
"""

import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.model_catalog import PRESETS, preset, preset_rows
from cvgl_edge.models import build_model, list_models
from cvgl_edge.models.registry import model_description


def test_catalogue_names_and_descriptions_are_the_registry_s():
    assert sorted(PRESETS) == list_models() == [row["name"] for row in preset_rows()]
    for name in list_models():
        assert model_description(name) == preset(name).description
    with pytest.raises(CvglError, match="unknown model 'nope'; available: geossm-nano"):
        preset("nope")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_catalogue_numbers_are_the_built_model_s(name):
    model = build_model(name)
    entry = PRESETS[name]
    assert tuple(model.input_sizes["ground"]) == entry.ground_size
    assert tuple(model.input_sizes["satellite"]) == entry.satellite_size
    assert model.descriptor_dim == entry.descriptor_dim
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 2) == entry.params_m
