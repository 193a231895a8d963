"""Every command's usage errors are one `error:` line and exit 2, like every other user error.

click would print them as a boxed panel of five lines (the README promises one line). The sweep
runs the console script's entry point, ``cvgl_edge.cli.main``, in-process for every command and
sub-command (fast), and one case through a real process.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from cvgl_edge import cli

COMMANDS = ["train", "distil", "eval", "demo", "export", "verify", "models", "doctor", "bench", "localize",
            "autopilot-params", "index build", "index info", "index set", "index mission", "plugin build",
            "plugin list"]


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["cvgl-edge", *argv])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    out, err = capsys.readouterr()
    return ended.value.code, out, err


def _assert_one_line(code: int, err: str, fragment: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert fragment in lines[0] and "╭" not in err and "Traceback" not in err


@pytest.mark.parametrize("command", COMMANDS)
def test_an_unknown_option_is_one_line_for_every_command(monkeypatch, capsys, command):
    code, _, err = _main(monkeypatch, capsys, *command.split(), "--no-such-option")
    _assert_one_line(code, err, "No such option: --no-such-option")


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--batch-size", "0"], "'--batch-size'"),
    (["nosuch"], "No such command 'nosuch'"),
    (["index", "nosuch"], "No such command 'nosuch'"),
    (["localize", "--index"], "'--index' requires an argument"),
    (["eval"], "Missing argument"),
    (["export", "ckpt.pt", "--opset", "abc"], "'--opset'"),
])
def test_bad_values_missing_arguments_and_unknown_commands_are_one_line(monkeypatch, capsys, argv, fragment):
    code, _, err = _main(monkeypatch, capsys, *argv)
    _assert_one_line(code, err, fragment)


def test_help_still_works_and_exits_0(monkeypatch, capsys):
    code, out, err = _main(monkeypatch, capsys, "models", "--help")
    assert code == 0 and "Usage" in out and not err


def test_the_console_script_prints_one_line_for_a_usage_error():
    run = subprocess.run([sys.executable, "-m", "cvgl_edge.cli", "train", "--batch-size", "0"], capture_output=True,
                         text=True, timeout=120)
    _assert_one_line(run.returncode, run.stderr, "'--batch-size'")
