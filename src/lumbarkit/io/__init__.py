"""Scan readers and writers, dispatched by path."""

from lumbarkit.io.readers import load_scan

__all__ = ["load_scan"]
