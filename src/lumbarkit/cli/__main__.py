"""``python -m lumbarkit.cli``: the lumbarkit command line."""

from lumbarkit.cli.main import run

run()
