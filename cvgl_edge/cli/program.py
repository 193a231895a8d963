"""The `cvgl-edge` program: the root typer app, every command registered on it (each command
group's module in this package), and the entry point. User errors end as one line and exit code 2."""

from __future__ import annotations

import sys

import typer

from cvgl_edge.cli import bench, demo, evaluate, export, info, localize, plugin, train
from cvgl_edge.errors import CvglError
from cvgl_edge.extras import missing_train_package, needs
from cvgl_edge.progress import console

app = typer.Typer(
    name="cvgl-edge",
    help=(
        "Cross-view geo-localisation on the edge: match drone or street images to satellite tiles.\n\n"
        "Train or distil a dual encoder (GeoSSM, VimGeo, LRFR), evaluate retrieval, export to ONNX "
        "or TensorRT and verify the files, benchmark backends, index a map and localise frames "
        "against it (MAVLink output), and build the TensorRT scan plugin.\n\n"
        "Start with `cvgl-edge demo`; `cvgl-edge doctor` checks the environment."
    ),
    # plain click layout: typer's rich panels leave options ~20 columns of help at 80 columns and
    # cut long words with '…'; click's wraps the help in 46 columns and never truncates
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# the order of `cvgl-edge --help` (typer lists the commands, then the groups, as registered)
app.command()(train.train)
app.command("distil")(train.distil_command)
app.command("eval")(evaluate.eval_command)
app.command()(demo.demo)
app.command("export")(export.export_command)
app.command("verify")(export.verify_command)
app.command()(info.models)
app.command()(info.doctor)
app.command("bench")(bench.bench_command)
app.command("localize")(localize.localize_command)
app.command("autopilot-params")(localize.autopilot_params_command)
app.add_typer(localize.index_app, name="index")
app.add_typer(plugin.plugin_app, name="plugin")


def one_line(error: CvglError) -> str:
    """The user-facing line of an error; DataLoader workers re-raise it wrapped in a
    traceback whose last line is ``...CvglError: <message>``."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    marker = "CvglError: "
    return last.split(marker, 1)[1] if marker in last else last


def click_error(exc: BaseException) -> tuple[str, int] | None:
    """(message, exit code) of a command-line usage error (unknown option or command, a value out of
    range, a missing argument), whichever click typer brings (typer 0.29 vendors its own); None otherwise."""
    if callable(getattr(exc, "format_message", None)) and isinstance(getattr(exc, "exit_code", None), int):
        return " ".join(str(exc.format_message()).split()), exc.exit_code
    return None


def invoked_command(argv: list[str]) -> str:
    """The command words of a command line (``["index", "build", "--map", ...]`` -> "index build")."""
    import typer.main

    command, words = typer.main.get_command(app), []
    for arg in argv:
        if arg.startswith("-"):
            continue
        sub = getattr(command, "commands", {}).get(arg)
        if sub is None:
            break
        command = sub
        words.append(arg)
    return " ".join(words) or "cvgl-edge"


def main() -> None:
    """Entry point: run the typer app, turning user errors into one line and exit code 2.

    Why ``standalone_mode=False``: click would print usage errors as a boxed panel of several
    lines; here they end like every other user error, as one ``error:`` line (exit 2).

    The deployment install (``pip install cvgl-edge``) has no PyTorch (nor the other packages of
    the ``train`` extra). The commands that need it (train, distil, export, verify, demo) import
    it first thing, so its absence surfaces here, before any work, as the one shared check:
    ``error: <command> needs PyTorch: pip install "cvgl-edge[train]"``. ``eval`` and ``bench`` run
    exported files without it and say in one line which extra a checkpoint needs.
    """
    try:
        code = app(standalone_mode=False)
    except CvglError as error:
        # plain print: rich would wrap a long message over several lines
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(2)
    except ImportError as error:
        package = missing_train_package(error)
        if package is None:
            raise
        print(f"error: {needs(invoked_command(sys.argv[1:]), package)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - only click's usage errors are handled; the rest re-raised
        usage = click_error(exc)
        if usage is None:
            raise
        message, exit_code = usage
        if message:  # a bare command group prints its help and says nothing more
            print(f"error: {message}", file=sys.stderr)
        sys.exit(exit_code)
    sys.exit(code if isinstance(code, int) else 0)
