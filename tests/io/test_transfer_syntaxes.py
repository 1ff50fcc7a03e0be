"""Every transfer syntax a PACS export uses is decoded: lossless ones to the very same pixels.

The source series is the phantom written by lumbarkit's own DICOM writer; each compressed copy is made
by an independent encoder (tests/io/dicom_syntaxes.py). Lossless syntaxes must give voxels equal to the
uncompressed series, lossy ones voxels close to it; JPEG Lossless (the commonest PACS export) must give
an identical analysis.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from dicom_syntaxes import SYNTAXES, Syntax, missing_tool, transcode  # noqa: E402 (tests/io/ helper)
from lumbarkit.io import load_scan
from lumbarkit.phantom import make_phantom
from lumbarkit.report.dicom import write_dicom_series
from lumbarkit.scan import Scan


def _series(root: Path, bits: int) -> Path:
    """The phantom (3 slices) quantised to ``bits``-bit integers, written as an uncompressed series."""
    folder = root / f"src{bits}"
    if folder.is_dir():
        return folder
    ph = make_phantom(n_slices=3, vertebrae=("L4", "L5", "S1"), noise_sigma=0)
    a = ph.scan.array
    values = np.round((a - a.min()) / (a.max() - a.min()) * (2 ** bits - 1))
    write_dicom_series(Scan(values, ph.scan.affine), folder)
    for path in folder.glob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.BitsStored, ds.HighBit = bits, bits - 1
        ds.save_as(path)
    return folder


@pytest.fixture(scope="module")
def series_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("syntaxes")


@pytest.mark.parametrize("syntax", SYNTAXES, ids=lambda s: s.uid)
def test_transfer_syntax_is_decoded(syntax: Syntax, series_root: Path):
    reason = missing_tool(syntax)
    if reason:
        pytest.skip(reason)
    source = _series(series_root, syntax.bits)
    copy = transcode(sorted(source.glob("*.dcm")), series_root / syntax.uid, syntax)
    expected, got = load_scan(source), load_scan(copy[0].parent)
    np.testing.assert_array_equal(got.affine, expected.affine)
    if syntax.lossless:
        np.testing.assert_array_equal(got.array, expected.array)
    else:
        error = np.abs(got.array - expected.array)
        assert 0 < error.max() <= 0.08 * expected.array.max()  # really lossy, and still the same image
        assert error.mean() <= 0.01 * expected.array.max()


def test_jpeg_lossless_series_gives_the_same_analysis(series_root: Path, tmp_path: Path):
    """The default phantom as written, and JPEG-Lossless SV1 compressed: identical result.json but for the input."""
    import lumbarkit
    from lumbarkit.report.outputs import result_json

    syntax = next(s for s in SYNTAXES if s.uid == pydicom.uid.JPEGLosslessSV1)
    reason = missing_tool(syntax)
    if reason:
        pytest.skip(reason)
    plain = tmp_path / "plain"
    write_dicom_series(make_phantom(noise_sigma=0).scan, plain)
    compressed = transcode(sorted(plain.glob("*.dcm")), tmp_path / "jpeg", syntax)[0].parent
    docs = [json.loads(result_json(lumbarkit.analyze(folder))) for folder in (plain, compressed)]
    for doc in docs:
        doc.pop("input")
    assert docs[0] == docs[1]
    assert docs[0]["levels"]
