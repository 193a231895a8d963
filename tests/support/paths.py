"""The repository's folders, for tests that read files beside the package (benchmarks/, calibration/...)."""

from pathlib import Path

#: tests/
TESTS = Path(__file__).resolve().parents[1]
#: the repository root (the clone): cvgl_edge/, export/, benchmarks/, calibration/, tests/
REPO_ROOT = TESTS.parent
