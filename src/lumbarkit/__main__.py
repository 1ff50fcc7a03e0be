"""``python -m lumbarkit``: the lumbarkit command line."""

from lumbarkit.cli.main import run

run()
