"""Test helper: copies of a DICOM series in another transfer syntax, by pydicom's encoders or dcmtk.

Each syntax is made by an encoder independent of lumbarkit's reader: pydicom (native, pyjpegls,
pylibjpeg-openjpeg) where it has one, dcmtk's ``dcmcjpeg`` (JPEG processes 1, 2/4 and 14) and
``dcmconv`` (explicit big endian) otherwise. ``bits`` is the largest BitsStored the syntax keeps.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom import uid


@dataclass(frozen=True)
class Syntax:
    uid: str
    lossless: bool
    tool: str  # "pydicom", "dcmcjpeg" or "dcmconv"
    bits: int = 16
    options: dict = field(default_factory=dict)  # pydicom compress() options, or the dcmtk flag under "flag"

    @property
    def name(self) -> str:
        return f"{uid.UID(self.uid).name} ({self.uid})"


SYNTAXES = [
    Syntax(uid.ExplicitVRLittleEndian, True, "pydicom"),
    Syntax(uid.ImplicitVRLittleEndian, True, "pydicom"),
    Syntax(uid.ExplicitVRBigEndian, True, "dcmconv", options={"flag": "+tb"}),
    Syntax(uid.DeflatedExplicitVRLittleEndian, True, "pydicom"),
    Syntax(uid.RLELossless, True, "pydicom"),
    Syntax(uid.JPEGBaseline8Bit, False, "dcmcjpeg", 8, {"flag": "+eb"}),
    Syntax(uid.JPEGExtended12Bit, False, "dcmcjpeg", 12, {"flag": "+ee"}),
    Syntax(uid.JPEGLossless, True, "dcmcjpeg", options={"flag": "+el"}),
    Syntax(uid.JPEGLosslessSV1, True, "dcmcjpeg", options={"flag": "+e1"}),
    Syntax(uid.JPEGLSLossless, True, "pydicom"),
    Syntax(uid.JPEGLSNearLossless, False, "pydicom", options={"jls_error": 2}),
    Syntax(uid.JPEG2000Lossless, True, "pydicom"),
    Syntax(uid.JPEG2000, False, "pydicom", options={"j2k_cr": [10]}),
]


def missing_tool(syntax: Syntax) -> str | None:
    """Why ``syntax`` cannot be made here (a one-line skip reason), or None."""
    if syntax.tool in ("dcmcjpeg", "dcmconv"):
        if shutil.which(syntax.tool) is None:
            return f"{syntax.tool} not installed (Debian package dcmtk; .ci/run installs it): cannot write {syntax.name}"
        return None
    if syntax.uid in (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian):
        return None
    from pydicom.pixels import get_encoder

    if not get_encoder(syntax.uid).is_available:
        return f"no pydicom encoder installed for {syntax.name}"
    return None


def transcode(files: list[Path], folder: Path, syntax: Syntax) -> list[Path]:
    """Write each file of ``files`` into ``folder`` in ``syntax`` (same names); returns the new paths."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in files:
        dst = folder / src.name
        if syntax.tool == "pydicom":
            ds = pydicom.dcmread(src)
            if syntax.uid in (uid.ExplicitVRLittleEndian, uid.ImplicitVRLittleEndian, uid.DeflatedExplicitVRLittleEndian):
                ds.file_meta.TransferSyntaxUID = syntax.uid
                ds.save_as(dst, enforce_file_format=True, implicit_vr=syntax.uid == uid.ImplicitVRLittleEndian)
            else:
                ds.compress(syntax.uid, **syntax.options)
                ds.save_as(dst, enforce_file_format=True)
        else:
            subprocess.run([syntax.tool, syntax.options["flag"], str(src), str(dst)], check=True, capture_output=True)
        assert str(pydicom.dcmread(dst, stop_before_pixels=True).file_meta.TransferSyntaxUID) == syntax.uid
        out.append(dst)
    return out
