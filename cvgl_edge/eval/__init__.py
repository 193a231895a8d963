"""Retrieval evaluation: descriptors, metrics (R@K, R@1%, mAP) and reports."""

from cvgl_edge.eval.metrics import cross_view_metrics, retrieval_metrics

__all__ = ["cross_view_metrics", "retrieval_metrics"]
