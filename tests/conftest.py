"""Shared test fixtures. Append new fixtures below; keep each one small and documented."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real-data folder lives beside the repository (../shared/data), never inside it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when the shared dataset is not beside the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not found: real-data tests need the shared dataset beside the repo")
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom():
    """The default synthetic T2 phantom (straight spine, seed 0), built once; treat it as read-only."""
    from lumbarkit.phantom import make_phantom

    return make_phantom()


@pytest.fixture(scope="session")
def dicom_tool():
    """``dicom_tool("dciodvfy")``: the path of a Debian DICOM client, or a skip naming the package to install."""
    import shutil

    packages = {"dciodvfy": "dicom3tools", "dsrdump": "dcmtk", "dcmdump": "dcmtk", "dcmcjpeg": "dcmtk", "dcm2niix": "dcm2niix"}

    def find(name: str) -> str:
        path = shutil.which(name)
        if path is None:
            pytest.skip(f"{name} not installed (Debian package {packages.get(name, name)}; .ci/run installs it)")
        return path

    return find


@pytest.fixture(scope="session")
def dciodvfy_errors(dicom_tool):
    """``dciodvfy_errors(path)``: the error lines dicom3tools' validator reports for a DICOM file (skips without it)."""
    import subprocess

    tool = dicom_tool("dciodvfy")

    def errors(path) -> list[str]:
        proc = subprocess.run([tool, str(path)], capture_output=True, text=True, timeout=120)
        return [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("Error")]

    return errors
