"""The package version (one place; read by hatch and by every output that records it)."""

__version__ = "0.1.0"
