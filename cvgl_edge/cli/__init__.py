"""The `cvgl-edge` command line (typer), one module per command group:

- ``program``: the root app, the commands registered on it, and ``main`` (the console script)
- ``common``: what the command modules share (help texts, the --json writer)
- ``train`` (train, distil), ``evaluate`` (eval), ``demo``, ``export`` (export, verify),
  ``bench``, ``localize`` (index build|info|set|mission, localize, autopilot-params),
  ``plugin`` (plugin build|list), ``info`` (models, doctor)

The commands' work is done in the packages below (train/, eval/, export/, localize/, ...); these
modules parse options, check outputs before any work and print the results.
"""

from cvgl_edge.cli.program import app, click_error, invoked_command, main, one_line

__all__ = ["app", "click_error", "invoked_command", "main", "one_line"]
