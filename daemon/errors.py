"""One exception type for every user-facing failure.

Raise ``SnapsealError("what went wrong, naming the file")`` anywhere; the CLI prints it as one
line (``snapseal: error: ...``) and exits 2, never a traceback from deep inside.
"""


class SnapsealError(Exception):
    """A problem the user can fix: bad input, a bad config, a missing key, a corrupt file."""
