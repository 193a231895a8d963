"""``cvgl-edge plugin build | list``: the SelectiveScan TensorRT plugin on the user's machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from cvgl_edge.export.plugin.build import plan_build, run_build
from cvgl_edge.export.plugin.cache import PluginBuild, list_builds, plugins_dir
from cvgl_edge.progress import console

plugin_app = typer.Typer(help="Build and list the SelectiveScan TensorRT plugin.\n\n"
                              "A CUDA kernel + IPluginV3 library that TensorRT engines load.",
                         no_args_is_help=True)


def _table(builds: list[PluginBuild], title: str, under: Path | None = None) -> Table:
    """One row per build. ``under``: libraries in that folder (named in the title) are shown
    relative to it, so a row fits 80 columns; a path that does not fit folds, never ends in '…'."""
    table = Table(title=title)
    for column in ("TensorRT", "sm", "CUDA", "built", "library"):
        table.add_column(column, overflow="fold")
    for b in builds:
        library = Path(b.library)
        if under is not None and library.is_relative_to(under):
            library = library.relative_to(under)
        # the day only (the time is in --json's built_at)
        table.add_row(b.tensorrt_version, ",".join(map(str, b.architectures)), b.cuda_version,
                      b.built_at.split("T")[0], str(library))
    return table


@plugin_app.command("build")
def build_command(
    tensorrt_root: Optional[Path] = typer.Option(None, help="TensorRT install with include/NvInfer.h (default: $TENSORRT_ROOT, then /usr/include/aarch64-linux-gnu (JetPack) and /usr/include/x86_64-linux-gnu)."),
    arch: Optional[list[int]] = typer.Option(None, help="GPU architecture to compile for, e.g. 87 (Jetson Orin), 86, 89, 90, 120; repeat for several. Default: this machine's GPU."),
    nvcc: Optional[Path] = typer.Option(None, help="nvcc to use (default: PATH, $CUDA_HOME, /usr/local/cuda)."),
    jobs: Optional[int] = typer.Option(None, min=1, help="Parallel compile jobs (default: all cores)."),
    json_out: bool = typer.Option(False, "--json", help="Print the build record as JSON instead of a table."),
) -> None:
    """Compile the plugin for this GPU into the cvgl-edge cache.

    There `export --format engine` finds it."""
    plan = plan_build(tensorrt_root, arch, nvcc)
    text = (f"building the SelectiveScan plugin: TensorRT {plan.headers.version} headers, CUDA {plan.cuda_version}, "
            f"sm_{', sm_'.join(map(str, plan.architectures))}")
    with console.status(text):
        build = run_build(plan, jobs)
    if json_out:
        typer.echo(json.dumps(build.to_json(), indent=2))
        return
    console.print(_table([build], "plugin built"))
    console.print("`cvgl-edge export --format engine` now uses it with TensorRT "
                  f"{build.tensorrt_major_minor}.x; trtexec: --dynamicPlugins={build.library}")
    typer.echo(build.library)


@plugin_app.command("list")
def list_command(
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the plugin libraries in the cvgl-edge cache.

    What `export --format engine` chooses from."""
    builds = list_builds()
    if json_out:
        typer.echo(json.dumps([b.to_json() for b in builds], indent=2))
        return
    if not builds:
        console.print(f"no plugin built yet (cache: {plugins_dir()}); run `cvgl-edge plugin build`")
        return
    console.print(_table(builds, f"plugins in {plugins_dir()}", under=plugins_dir()))
