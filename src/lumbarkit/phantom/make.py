"""``make_phantom``: build one phantom (image, labels and truth) from its anatomy parameters."""

from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import numpy as np

from lumbarkit.levels import CANAL_ID, disc_id, vertebra_id
from lumbarkit.phantom.anatomy import build_anatomy
from lumbarkit.phantom.chain import (
    chain_quads,
    check_chain,
    complete,
    disc_values,
    extended_chain,
    per_name,
)
from lumbarkit.phantom.defaults import (
    BODY_HALF_WIDTH_MM,
    CANAL_HALF_WIDTH_MM,
    DEFAULT_BODY_DEPTH_MM,
    DEFAULT_BODY_HEIGHT_MM,
    DEFAULT_DISC_HEIGHT_MM,
    DEFAULT_INTENSITIES,
    DEFAULT_VERTEBRAE,
    GRID_NUDGE_MM,
    MARGIN_MM,
    Point,
)
from lumbarkit.phantom.render import Grid, raster, render
from lumbarkit.phantom.truth import Phantom, PhantomTruth, truth_for
from lumbarkit.scan import Scan, ScanMetadata, to_canonical

log = logging.getLogger(__name__)


def make_phantom(
    *,
    spacing_mm: Sequence[float] = (3.0, 0.8, 0.8),
    n_slices: int = 15,
    shape_rc: tuple[int, int] | None = None,
    vertebrae: Sequence[str] = DEFAULT_VERTEBRAE,
    body_height_mm: Mapping[str, float] | float | None = None,
    body_depth_mm: Mapping[str, float] | float | None = None,
    wedge: Mapping[str, float] | None = None,
    disc_height_mm: Mapping[str, float] | float | None = None,
    slip_mm: Mapping[str, float] | None = None,
    tilt_deg: float = 0.0,
    lordosis_deg: float = 0.0,
    in_plane_rotation_deg: float = 0.0,
    sequence: str = "T2",
    intensities: Mapping[str, float] | None = None,
    noise_sigma: float = 20.0,
    seed: int = 0,
) -> Phantom:
    """Build a sagittal lumbar-spine phantom with exactly known geometry.

    Parameters
    ----------
    spacing_mm : voxel size (slice, row, col) in mm.
    n_slices : number of sagittal slices; the central slice ``n_slices // 2`` is the mid-sagittal plane (x = 0).
    shape_rc : in-plane (rows, cols); ``None`` reaches from ``MARGIN_MM`` above the spine into the lower sacrum and
        from ``ANTERIOR_VIEW_MM`` in front of the bodies to behind the skin. The spine is centred (module docstring).
    vertebrae : contiguous names top to bottom (T10 ... L5, S1) that are labelled and described by the truth;
        the image also shows vertebrae above them and the sacrum below.
    body_height_mm : posterior edge height, one value for all or per name (defaults: typical adult).
    body_depth_mm : AP depth (anterior to posterior edge), one value or per name.
    wedge : per name, anterior / posterior edge height ratio (0.7 = anterior wedge compression).
    disc_height_mm : middle disc height, one value or per disc (``"L4/L5"`` or upper vertebra ``"L4"``).
    slip_mm : per name, anterior translation (mm) of that vertebra, and all above it, relative to the one below.
    tilt_deg : rotation of the whole spine in the sagittal plane (endplate angles all increase by it).
    lordosis_deg : bodies rotate progressively, from -lordosis/2 at L1 to +lordosis/2 at S1 (linear in level).
    in_plane_rotation_deg : oblique acquisition: the image grid is rotated by this angle about the left-right
        axis; anatomy and truth (RAS) are unchanged, the affine carries the rotation.
    sequence : "T2" or "T1", picks default intensities; ``intensities`` overrides keys ``body`` (median marrow
        signal of every body), ``disc`` (nucleus), ``annulus``, ``canal`` (cord and nerve roots), ``csf``,
        ``background`` (muscle), ``fat``, ``cortex`` (cortical bone, ligaments), ``air``.
    noise_sigma : Rician noise sigma in signal units (0 = noise free).
    seed : seed of the noise, the tissue textures, the bowel loops and the bias field; equal arguments give
        identical phantoms, and the labels and truth do not depend on it.
    """
    spacing, values = _check_options(spacing_mm, n_slices, sequence, intensities, noise_sigma)
    names, quads, all_quads, anat, disc_quads = _spine(vertebrae, body_height_mm, body_depth_mm, wedge, disc_height_mm,
                                                      slip_mm, lordosis_deg, tilt_deg)

    grid = _image_grid(quads, anat, spacing, shape_rc, in_plane_rotation_deg)
    bodies = [(grid.to_px(quads[n]), vertebra_id(n)) for n in names]
    disc_polys = [(grid.to_px(q), disc_id(d)) for d, q in disc_quads.items()]
    labels_full = raster([(grid.to_px(anat.canal), CANAL_ID), *disc_polys, *bodies], (grid.rows, grid.cols))

    sk, mid = spacing[0], int(n_slices) // 2
    image, labels, body_slices, canal_slices = _slices(anat, grid, values, labels_full, names, spacing[0], int(n_slices), seed)
    image = _rician(image, noise_sigma, seed)
    affine = _affine(grid, sk, mid)
    meta = ScanMetadata(
        modality="MR", sequence=sequence, series_description=f"lumbarkit phantom {sequence} sagittal",
        manufacturer="lumbarkit synthetic", source_format="synthetic",
    )
    scan = Scan.from_array(image.astype(np.float32), affine, meta)
    canon_labels, _ = to_canonical(labels, affine)
    if scan.array.shape != tuple(labels.shape):  # |rotation| > 45 deg swapped rows and columns
        log.info("in-plane rotation %.1f deg swapped the row and column axes", in_plane_rotation_deg)

    def to_ras(p: np.ndarray) -> Point:
        return (0.0, float(-p[0]), float(-p[1]))

    vert_truth, disc_truth, lordosis = truth_for(names, quads, to_ras)
    truth = PhantomTruth(
        vertebrae=vert_truth, discs=disc_truth, lordosis_deg=lordosis, tilt_deg=float(tilt_deg),
        in_plane_rotation_deg=float(in_plane_rotation_deg), body_slices=tuple(body_slices), canal_slices=tuple(canal_slices),
    )
    log.debug("phantom %s, %d vertebrae, lordosis %s", scan, len(names), lordosis)
    return Phantom(scan=scan, labels=np.ascontiguousarray(canon_labels.astype(np.int32)), truth=truth)


def _check_options(spacing_mm, n_slices, sequence: str, intensities, noise_sigma: float) -> tuple[tuple[float, ...], dict[str, float]]:
    """Validated voxel size (mm) and tissue intensities; a bad option is a ValueError."""
    spacing = tuple(float(s) for s in spacing_mm)
    if len(spacing) != 3 or not all(np.isfinite(spacing)) or min(spacing) <= 0:
        raise ValueError(f"spacing_mm must be three positive numbers (slice, row, col), got {spacing_mm}")
    if int(n_slices) < 1:
        raise ValueError("n_slices must be >= 1")
    if sequence not in DEFAULT_INTENSITIES:
        raise ValueError(f"sequence must be one of {sorted(DEFAULT_INTENSITIES)}, got {sequence!r}")
    values = dict(DEFAULT_INTENSITIES[sequence])
    unknown = set(intensities or {}) - set(values)
    if unknown:
        raise ValueError(f"unknown intensity keys {sorted(unknown)}; use {sorted(values)}")
    values.update({k: float(v) for k, v in (intensities or {}).items()})
    if noise_sigma < 0:
        raise ValueError("noise_sigma must be >= 0")
    return spacing, values


def _spine(vertebrae, body_height_mm, body_depth_mm, wedge, disc_height_mm, slip_mm, lordosis_deg, tilt_deg):
    """(labelled names, their quads, every drawn quad, the anatomy, the labelled discs' quads), all in plane mm."""
    names = check_chain(vertebrae)
    heights = per_name(body_height_mm, DEFAULT_BODY_HEIGHT_MM, names, "body_height_mm")
    depths = per_name(body_depth_mm, DEFAULT_BODY_DEPTH_MM, names, "body_depth_mm")
    wedges = {n: float(v) for n, v in (wedge or {}).items()}
    slips = {n: float(v) for n, v in (slip_mm or {}).items()}
    for what, table in (("wedge", wedges), ("slip_mm", slips)):
        if set(table) - set(names):
            raise ValueError(f"{what}: unknown names {sorted(set(table) - set(names))}")
    if any(not 0.1 <= v <= 2.0 for v in wedges.values()):
        raise ValueError(f"wedge ratios must lie in 0.1..2.0, got {wedges}")
    if names[-1] in slips:
        raise ValueError(f"slip_mm: {names[-1]} is the lowest vertebra, it has nothing below to slip on")
    discs = disc_values(disc_height_mm, names)

    # the drawn chain: unlabelled vertebrae above, and down to S1; they take defaults (or the one value given for all)
    chain = extended_chain(names)
    thoracic = ("T", "C")
    heights = complete(heights, body_height_mm, DEFAULT_BODY_HEIGHT_MM, chain,
                        lambda n: DEFAULT_BODY_HEIGHT_MM["T10" if n.startswith(thoracic) else "L5"])
    depths = complete(depths, body_depth_mm, DEFAULT_BODY_DEPTH_MM, chain,
                       lambda n: DEFAULT_BODY_DEPTH_MM["T10" if n.startswith(thoracic) else "L5"])
    discs = complete(discs, disc_height_mm, DEFAULT_DISC_HEIGHT_MM, [f"{u}/{lo}" for u, lo in zip(chain, chain[1:])], lambda n: 5.5)
    all_quads = chain_quads(chain, names, heights, depths, wedges, discs, slips, float(lordosis_deg), float(tilt_deg))
    quads = {n: all_quads[n] for n in names}
    anat = build_anatomy(chain, names, all_quads)
    disc_quads = {f"{u}/{lo}": np.array([quads[u][3], quads[u][2], quads[lo][1], quads[lo][0]]) for u, lo in zip(names, names[1:])}
    return names, quads, all_quads, anat, disc_quads


def _image_grid(quads, anat, spacing: tuple[float, ...], shape_rc, in_plane_rotation_deg: float) -> Grid:
    """The in-plane pixel grid: the spine centred, the requested shape or one fitted to the anatomy."""
    # image grid: pixel (i, j) centre = origin + i*dr*r_hat + j*dc*c_hat (plane mm)
    phi = math.radians(float(in_plane_rotation_deg))
    c_hat = np.array([math.cos(phi), math.sin(phi)])
    r_hat = np.array([-math.sin(phi), math.cos(phi)])
    _, dr, dc = spacing
    core = np.vstack([*quads.values(), anat.canal_core])  # must be inside the image
    spine = np.vstack([core, *(anat.bodies[n] for n in ("S2", "S3", "S4", "S5"))])  # centred in the image
    rr, cc = core @ r_hat, core @ c_hat
    sr, sc = spine @ r_hat, spine @ c_hat
    if shape_rc is None:
        tall = np.vstack([core, anat.bodies["S2"], anat.bodies["S3"]]) @ r_hat  # down into the lower sacrum
        wide = np.vstack([spine, anat.skin_points, anat.front_points]) @ c_hat
        rows = int(math.ceil((tall.max() - tall.min() + 2 * MARGIN_MM) / dr)) + 1
        cols = int(math.ceil((wide.max() - wide.min()) / dc)) + 1
        r_mid, c_mid = (tall.max() + tall.min()) / 2, (wide.max() + wide.min()) / 2
    else:
        rows, cols = (int(v) for v in shape_rc)
        if (rows - 1) * dr < rr.max() - rr.min() or (cols - 1) * dc < cc.max() - cc.min():
            need = (int(math.ceil((rr.max() - rr.min()) / dr)) + 1, int(math.ceil((cc.max() - cc.min()) / dc)) + 1)
            raise ValueError(f"shape_rc {shape_rc} is too small for this spine (needs at least {need})")
        r_mid, c_mid = (sr.max() + sr.min()) / 2, (sc.max() + sc.min()) / 2
    span_r, span_c = (rows - 1) * dr, (cols - 1) * dc
    r0 = float(np.clip(r_mid - span_r / 2, rr.max() - span_r, rr.min()))
    c0 = float(np.clip(c_mid - span_c / 2, cc.max() - span_c, cc.min()))
    # The tiny offset (exact in the affine) keeps pixel centres off polygon edges of round-number geometry,
    # so shared edges never hand a whole row of pixels to the structure painted last.
    origin = (r0 + GRID_NUDGE_MM) * r_hat + (c0 + GRID_NUDGE_MM) * c_hat
    return Grid(origin, r_hat, c_hat, dr, dc, rows, cols)


def _slices(anat, grid: Grid, values, labels_full: np.ndarray, names, sk: float, n_slices: int, seed: int):
    """Noise-free image and label stacks (slice, row, col) and the slices that show bodies and the canal."""
    rows, cols = grid.rows, grid.cols
    labels_side = np.where(labels_full == CANAL_ID, 0, labels_full)
    mid = n_slices // 2
    xs = (mid - np.arange(n_slices)) * sk  # RAS x of each canonical slice (towards left = -x)
    has_side = bool(np.any((np.abs(xs) > CANAL_HALF_WIDTH_MM) & (np.abs(xs) <= BODY_HALF_WIDTH_MM)))
    img_full, img_side, img_none = render(anat, grid, values, np.random.default_rng((int(seed), 1)), labels_full, names, has_side)
    image = np.empty((n_slices, rows, cols), dtype=np.float64)
    labels = np.zeros((n_slices, rows, cols), dtype=np.int32)
    body_slices, canal_slices = [], []
    for k, x in enumerate(xs):
        if abs(x) <= CANAL_HALF_WIDTH_MM:
            image[k], labels[k] = img_full, labels_full
            canal_slices.append(k)
            body_slices.append(k)
        elif abs(x) <= BODY_HALF_WIDTH_MM:
            image[k], labels[k] = img_side, labels_side
            body_slices.append(k)
        else:
            image[k] = img_none
    return image, labels, body_slices, canal_slices


def _affine(grid: Grid, sk: float, mid: int) -> np.ndarray:
    """Voxel index (slice, row, col) -> RAS mm of the phantom's grid (central slice at x = 0)."""
    r_hat, c_hat, dr, dc, origin = grid.r_hat, grid.c_hat, grid.dr, grid.dc, grid.origin
    affine = np.eye(4)
    affine[:3, 0] = (-sk, 0.0, 0.0)
    affine[:3, 1] = (0.0, -dr * r_hat[0], -dr * r_hat[1])
    affine[:3, 2] = (0.0, -dc * c_hat[0], -dc * c_hat[1])
    affine[:3, 3] = (mid * sk, -origin[0], -origin[1])
    return affine


def _rician(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Magnitude of the image plus complex Gaussian noise of ``sigma`` (Rician); unchanged when sigma is 0."""
    if sigma <= 0:
        return image
    rng = np.random.default_rng(seed)
    real = image + rng.normal(0.0, sigma, image.shape)
    imag = rng.normal(0.0, sigma, image.shape)
    return np.hypot(real, imag)
