"""Imports every command module so its commands register on the app."""

from lumbarkit.cli import (  # noqa: F401
    analyze,  # noqa: F401
    batch,  # noqa: F401
    demo,  # noqa: F401
    grade,
    info,
    measure,  # noqa: F401
    rsna,  # noqa: F401
    segment,
    train,
)
