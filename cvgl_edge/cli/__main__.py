"""``python -m cvgl_edge.cli`` (and ``torchrun ... -m cvgl_edge.cli train``): the console script."""

from cvgl_edge.cli import main

main()
