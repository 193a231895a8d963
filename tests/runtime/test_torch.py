"""PyTorch encoder: the Encoder stages around ``model.encode``; CPU refusals; CUDA modes on a GPU."""

import numpy as np
import pytest
import torch

from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model, save_checkpoint
from cvgl_edge.runtime import model_encoder, open_encoder
from cvgl_edge.runtime.torch_encoder import TorchEncoder
from tests.support.tiny import TINY


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("geossm-nano", **TINY).eval()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return {"ground": rng.standard_normal((5, 3, 32, 128)).astype(np.float32),
            "satellite": rng.standard_normal((5, 3, 64, 64)).astype(np.float32)}


def reference(model, view, array):
    with torch.no_grad():
        return model.encode(torch.from_numpy(array), view).numpy()


def test_stages_match_model_encode(model, images):
    for view in ("ground", "satellite"):
        encoder = model_encoder(model, view)
        staged = encoder.to_device(encoder.check_images(images[view]))
        assert isinstance(staged, torch.Tensor) and staged.device.type == "cpu"
        out = encoder.to_host(encoder.forward(staged))
        assert out.dtype == np.float32 and out.shape == (5, model.descriptor_dim)
        np.testing.assert_array_equal(out, reference(model, view, images[view]))
        np.testing.assert_array_equal(encoder.encode_batches(images[view], 2), out)
        assert encoder.max_batch is None


def test_info(model):
    info = model_encoder(model, "drone").info  # drone is the satellite branch
    assert (info.backend, info.view, info.input_size, info.precision, info.device) == (
        "torch", "satellite", (64, 64), "fp32", "cpu")
    assert info.descriptor_dim == model.descriptor_dim and len(info.model_sha256) == 64
    assert info.runtime.startswith(f"torch {torch.__version__} cpu eager fp32")
    assert info.to_dict()["input_size"] == [64, 64]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks CPU refusals")
def test_cpu_refusals(model):
    cases = [(dict(precision="fp16"), "runs fp16 on CUDA only"),
             (dict(precision="bf16"), "runs bf16 on CUDA only"),
             (dict(precision="int8"), "unknown precision 'int8'"),
             (dict(torch_mode="cudagraph"), "cudagraph needs a CUDA device"),
             (dict(torch_mode="jit"), "unknown torch mode 'jit'"),
             (dict(device="cuda"), "no CUDA GPU is available")]
    for kwargs, fragment in cases:
        with pytest.raises(CvglError, match=fragment):
            model_encoder(model, "ground", **kwargs)
    with pytest.raises(CvglError, match="unknown view 'aerial'"):
        model_encoder(model, "aerial")


def test_wrong_images_are_one_line_errors(model):
    encoder = model_encoder(model, "ground")
    with pytest.raises(CvglError, match=r"ground encoder expects images \(N, 3, 32, 128\), got \(2, 3, 64, 64\)"):
        encoder.encode(np.zeros((2, 3, 64, 64), np.float32))


def test_open_encoder_on_a_checkpoint(tmp_path, model, images):
    checkpoint = save_checkpoint(model, tmp_path / "tiny.pt")
    with open_encoder(checkpoint, "satellite") as encoder:
        assert isinstance(encoder, TorchEncoder)
        np.testing.assert_array_equal(encoder.encode(images["satellite"]),
                                      reference(model, "satellite", images["satellite"]))
    with pytest.raises(CvglError, match="a checkpoint holds both branches"):
        open_encoder(checkpoint, None)
    with pytest.raises(CvglError, match="--backend onnxruntime needs an exported .onnx file; run cvgl-edge export"):
        open_encoder(checkpoint, "ground", backend="onnxruntime")
    with pytest.raises(CvglError, match="checkpoint not found"):
        open_encoder(tmp_path / "missing.pt", "ground")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal")
def test_eval_torch_half_precision_needs_cuda(tmp_path, model):
    from cvgl_edge.eval.evaluate import evaluate_source

    checkpoint = save_checkpoint(model, tmp_path / "tiny.pt", train_config={"data": "synthetic:64"})
    with pytest.raises(CvglError, match="the torch backend runs fp16 on CUDA only"):
        evaluate_source(checkpoint, precision="fp16", show_progress=False)


@pytest.mark.slow
def test_compile_mode_matches_eager(model, images):
    """torch.compile (inductor) on the CPU: ~1-2 min of compilation on 2 cores."""
    encoder = model_encoder(model, "satellite", torch_mode="compile")
    out = encoder.encode(images["satellite"])
    np.testing.assert_allclose(out, reference(model, "satellite", images["satellite"]), atol=1e-5)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.gpu
@cuda
@pytest.mark.parametrize("precision,min_cosine", [("fp32", 0.99999), ("fp16", 0.99), ("bf16", 0.98)])
def test_cuda_precisions(precision, min_cosine, images):
    torch.manual_seed(0)
    cpu_model = build_model("geossm-nano", **TINY).eval()
    expected = reference(cpu_model, "ground", images["ground"])
    gpu_model = build_model("geossm-nano", **TINY).eval()
    gpu_model.load_state_dict(cpu_model.state_dict())
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("no bf16 on this GPU")
    encoder = model_encoder(gpu_model, "ground", device="cuda", precision=precision)
    staged = encoder.to_device(images["ground"])
    assert staged.is_cuda
    out = encoder.to_host(encoder.forward(staged))
    encoder.synchronize()
    assert out.dtype == np.float32
    assert ((out * expected).sum(1)).min() >= min_cosine


@pytest.mark.gpu
@pytest.mark.slow
@cuda
def test_cudagraph_mode_matches_eager(images):
    torch.manual_seed(0)
    model = build_model("geossm-nano", **TINY).eval()
    expected = reference(model, "ground", images["ground"])
    encoder = model_encoder(model, "ground", device="cuda", torch_mode="cudagraph")
    first = encoder.encode(images["ground"])
    second = encoder.encode(images["ground"][:2])  # another shape; the first result must survive
    assert ((first * expected).sum(1)).min() >= 0.9999
    assert ((second * expected[:2]).sum(1)).min() >= 0.9999
