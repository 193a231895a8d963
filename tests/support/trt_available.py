"""Whether a TensorRT Python package (tensorrt or tensorrt_rtx) is importable, for skip marks."""

from cvgl_edge.errors import CvglError
from cvgl_edge.runtime.tensorrt import backend as trt_backend


def has_tensorrt() -> bool:
    try:
        trt_backend.load_backend()
        return True
    except CvglError:
        return False
