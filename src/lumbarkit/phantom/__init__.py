"""A synthetic sagittal lumbar-spine MRI phantom with exactly known geometry.

Geometry
--------
Everything is drawn in the patient's mid-sagittal plane, in millimetres, with plane
coordinates ``(a, b)``: ``a`` towards posterior, ``b`` towards inferior (RAS ``y = -a``,
``z = -b``, ``x = 0`` on the central slice). Each vertebral body (and S1, as a body-like
block) is a quadrilateral with corners, in this order,

    SA superior-anterior, SP superior-posterior, IP inferior-posterior, IA inferior-anterior.

In its own frame a body is a symmetric trapezoid: AP depth ``D``, posterior edge height
``Hp = body_height_mm``, anterior edge height ``wedge * Hp``. Bodies are stacked bottom-up
(S1 first): the posterior-inferior corner of a vertebra sits on the normal through the
posterior-superior corner of the vertebra below, translated ``slip_mm`` anteriorly along that
body's superior endplate; the normal distance is solved so that the disc's middle height is
exactly ``disc_height_mm``. The lowest body's centroid is fixed at RAS (0, 0, -110) mm and
``tilt_deg`` turns the whole spine about it, so a slip moves only the vertebrae above it. A
disc is the quadrilateral between the inferior endplate of the vertebra above and the
superior endplate of the vertebra below. The canal (label 100) is a
band ``CANAL_GAP_MM`` behind the posterior walls, ``CANAL_DEPTH_MM`` deep, from S1's
inferior-posterior corner up past the top of the image; its centre holds the conus and
nerve roots (``canal`` intensity) in CSF (``csf`` intensity).

Ground truth (:class:`PhantomTruth`) is computed from these polygons, never from pixels:

* heights (bodies and discs alike): let ``A``/``P`` be the midpoints of the anterior/posterior
  edges (``(SA+IA)/2``, ``(SP+IP)/2``); on the mid-line ``A -> P`` take the points at 10 %, 50 %
  and 90 % of its length; the anterior/middle/posterior height is the length of the chord
  through that point, perpendicular to the mid-line, between the superior and inferior edge
  lines (Schneider-style heights 10 % inward from the anterior/posterior edges);
* AP depth: ``|P - A|``;
* endplate angle: direction of the endplate from its anterior to its posterior corner, in the
  patient's sagittal plane, degrees from the patient's posterior axis, positive when the
  posterior end is superior (S1's superior endplate of a lordotic spine is positive);
* lordosis: S1 superior endplate angle minus L1 superior endplate angle (positive = lordosis);
* slip: ``(SP_below - IP_upper) . e`` with ``e`` the unit vector along the lower body's superior
  endplate (anterior -> posterior), positive = upper body displaced anteriorly; percent = that
  offset / length of the lower body's superior endplate * 100 (Meyerding);
* centroid: area centroid of the polygon, RAS mm, on the central slice (x = 0).

All truth is in patient (RAS) space, so it does not change with ``in_plane_rotation_deg``
(an oblique acquisition: the image grid, not the anatomy, is rotated).

Unlabelled anatomy
------------------
So that the image looks like a sagittal MRI (and a segmentation network trained on real scans
reads it), the image shows more than the labelled structures; none of it enters the label map
or the truth, and none of it moves a labelled structure:

* ``EXTRA_ABOVE`` vertebrae (with their discs) continue the chain above the top labelled body,
  at that body's angle, and the chain is completed down to S1 when the lowest labelled body is
  not S1 (so the sacrum is always there);
* below S1 the rest of the sacrum (``SACRAL_SEGMENTS``: S2-S5, each smaller, the sacrum concave
  in front), fused with S1 into one bone with a faint S1/S2 remnant disc (``REMNANT``), its
  marrow a little darker (``SACRAL_MARROW``); a narrowing sacral canal (fat, a root) and the
  posterior sacral wall behind it (no coccyx);
* bodies have a dark cortical rim (``cortex``, ``CORTEX_MM``) around textured marrow; discs a
  bright nucleus (``disc``, with an intranuclear cleft) fading into a dark annulus
  (``annulus``); dark posterior and anterior longitudinal ligaments; the cord ends at L1
  (conus) and the cauda equina runs below it, lying posteriorly in the CSF;
* on the canal slices (``|x| <= CANAL_HALF_WIDTH_MM``) the dura, epidural fat, laminae and
  spinous processes (with fat between them) behind the canal; on the other body slices
  pedicles and articular pillars with fat and a nerve root in each foramen (posterior elements:
  ``PE_MARROW``);
* soft tissue laid out along the spine: paraspinal muscle (``background``), subcutaneous fat
  (``fat``) under the skin of the back (``SKIN_MM``), air (``air``) behind it; in front
  prevertebral fat, the aorta (flow void, down to L4), bowel loops (fluid, content, gas) in
  mesenteric fat above S1 and the bladder and rectum in the pelvis; the slices beyond the
  bodies show this soft tissue only;
* a smooth multiplicative bias field (receive coil behind the back, slow random variation).
  Each labelled body's marrow gain is then set so that its median signal over its label on the
  central slice is exactly ``body`` before noise (``SACRAL_MARROW * body`` for S1); the
  unlabelled vertebrae and the rest of the sacrum share the gain of the nearest labelled body.

Textures, bowel loops and the bias field are drawn from ``seed`` as well as the noise; the
label map and the truth do not depend on it.

S1's superior endplate angle is set by the geometry alone: ``lordosis_deg / 2 + tilt_deg``. A
segmentation network trained on real scans recognises the sacrum largely by that slope: the
packaged model classes S1 as sacrum at a realistic sacral slope (35-45 degrees, e.g.
``lordosis_deg=50, tilt_deg=15``), but takes a flat S1 (0 degrees for the default straight
spine, 15 for ``lordosis_deg=30``) for a vertebral body; level naming then relies on
localisation's fallback (the bone below the lowest disc is S1).

Rasterisation
-------------
Label voxel ``(k, i, j)`` holds a structure when its centre, the point the affine maps the
index to, lies inside the structure's polygon (``skimage.draw.polygon``) and, across slices,
when ``|x| <= half width`` (bodies and discs ``BODY_HALF_WIDTH_MM``, canal
``CANAL_HALF_WIDTH_MM``). The grid origin is offset by ``GRID_NUDGE_MM`` (recorded exactly in
the affine) so that no pixel centre lies on an edge of round-number geometry; should one
anyway, it goes to the structure painted last (bodies over discs over canal). Counting label
pixels along a line therefore matches a true length within one pixel. Intensities of the
drawn structures are rendered on a ``SUPERSAMPLE`` x supersampled in-plane grid and
block-averaged (partial volume at edges), over soft tissue rendered on the pixel grid; then
Rician noise of ``noise_sigma`` is added.

Field of view
-------------
With ``shape_rc`` the spine (labelled bodies, canal, sacrum S2-S5) is centred in the image,
shifted only as far as needed to keep every labelled body and the canal beside it inside. The
automatic ``shape_rc`` (``None``) reaches ``MARGIN_MM`` above the top labelled body and below
S3 (into the lower sacrum), and in the AP direction from ``ANTERIOR_VIEW_MM`` in front of the
bodies to a little air behind the skin.
Modules (in build order): :mod:`.defaults` (sizes, intensities), :mod:`.geometry` (plane helpers),
:mod:`.chain` (stacked body quadrilaterals), :mod:`.anatomy` (labelled polygons), :mod:`.truth`
(ground truth from the polygons), :mod:`.render` (label map and image), :mod:`.make`
(:func:`make_phantom`) and :mod:`.write` (:func:`write_phantom`).
"""

from lumbarkit.phantom.defaults import CANAL_DEPTH_MM, DEFAULT_VERTEBRAE
from lumbarkit.phantom.geometry import quad_heights
from lumbarkit.phantom.make import make_phantom
from lumbarkit.phantom.truth import DiscTruth, Phantom, PhantomTruth, VertebraTruth
from lumbarkit.phantom.write import write_phantom

__all__ = ["CANAL_DEPTH_MM", "DEFAULT_VERTEBRAE", "DiscTruth", "Phantom", "PhantomTruth", "VertebraTruth",
           "make_phantom", "quad_heights", "write_phantom"]
