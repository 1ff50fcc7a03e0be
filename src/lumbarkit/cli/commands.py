"""Imports every command module so its commands register on the app."""

from lumbarkit.cli import info  # noqa: F401
