"""``cvgl-edge localize`` and ``cvgl-edge index``: placeholders until the loop lands."""

from __future__ import annotations

import typer

from cvgl_edge.errors import CvglError

index_app = typer.Typer(help="Build and inspect satellite tile indexes.", no_args_is_help=True)


@index_app.command("build")
def index_build() -> None:
    """Cut a georeferenced map into tiles and embed them with the satellite encoder."""
    raise CvglError("index build is not implemented yet")


def localize_command() -> None:
    """Locate camera frames against a tile index and emit filtered fixes."""
    raise CvglError("localize is not implemented yet")
