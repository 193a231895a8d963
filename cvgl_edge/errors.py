"""User-facing errors.

Anything a user can cause (a bad path, a corrupt image, a checkpoint for another
model) raises ``CvglError``; the CLI prints its message on one line and exits
non-zero instead of showing a traceback.
"""


class CvglError(Exception):
    """An error caused by user input, reported as one line by the CLI."""


def first_line(exc: BaseException) -> str:
    """First line of a library exception's message (or its type name), for a one-line error."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
