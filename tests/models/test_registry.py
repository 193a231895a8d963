"""Model registry: presets, overrides, errors."""

from __future__ import annotations

import pytest

from cvgl_edge.errors import CvglError
from cvgl_edge.models import GeoSSM, build_model, list_models, model_config, register_model
from cvgl_edge.models import registry


def test_presets_listed() -> None:
    assert {"geossm-small", "geossm-tiny", "geossm-nano"} <= set(list_models())


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(CvglError, match="unknown model 'geossm-huge'.*geossm-nano.*geossm-small"):
        build_model("geossm-huge")
    with pytest.raises(CvglError, match="unknown model"):
        model_config("nope")


def test_unknown_option_lists_valid_options() -> None:
    with pytest.raises(CvglError, match="unknown option.*widht.*valid:.*embed_dim"):
        build_model("geossm-nano", widht=8)


def test_overrides_and_config_round_trip() -> None:
    model = build_model("geossm-nano", embed_dim=32, depth=1, cga_groups=4,
                        ground_size=[32, 128], satellite_size=64)
    assert isinstance(model, GeoSSM) and model.model_name == "geossm-nano"
    assert model.config.satellite_size == (64, 64)
    again = build_model("geossm-nano", model.config.to_dict())
    assert again.config == model.config
    again2 = build_model("geossm-nano", **model.config.to_dict())
    assert again2.config == model.config
    assert model_config("geossm-nano")["embed_dim"] == 64  # defaults untouched


def test_register_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    @register_model("toy", defaults={"embed_dim": 32, "depth": 1, "cga_groups": 4,
                                     "ground_size": 32, "satellite_size": 32})
    def _toy(**options):
        return GeoSSM(options)

    assert "toy" in list_models()
    assert build_model("toy").model_name == "toy"
    with pytest.raises(ValueError):
        register_model("toy")(_toy)
