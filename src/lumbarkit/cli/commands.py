"""Imports every command module so its commands register on the app."""

from lumbarkit.cli import grade, info, segment, train  # noqa: F401
from lumbarkit.cli import demo  # noqa: F401
from lumbarkit.cli import measure  # noqa: F401
from lumbarkit.cli import analyze  # noqa: F401
from lumbarkit.cli import batch  # noqa: F401
