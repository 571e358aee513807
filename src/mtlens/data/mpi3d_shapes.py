"""Object silhouettes for the MPI3D stand-in: per shape, which points are inside and their surface normal.

Every shape is described in the object's own 2-D frame as seen from the camera: `a` runs along the object's
axis (away from the arm that holds it), `b` across it, both in units of the object's radius; the object
touches the arm's tip at a = -0.8. A shape function returns `(inside, nb, na, nz)`: a boolean mask and the
unit normal (b, a, towards the viewer) of the visible surface, from which the renderer computes the shading.
The silhouettes are 2-D stand-ins for the real 3-D objects (cone, cube, ...), not projections of meshes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

ShapeOut = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
ShapeFn = Callable[[np.ndarray, np.ndarray], ShapeOut]

BASE = -0.8  # where every object sits on the arm's tip


def _unit(nb: np.ndarray, na: np.ndarray, nz: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    norm = np.sqrt(nb * nb + na * na + nz * nz) + 1e-12
    return nb / norm, na / norm, nz / norm


def _round_body(b: np.ndarray, half_width: np.ndarray | float, tilt: float) -> tuple[np.ndarray, ...]:
    """Returns the normal of a surface of revolution seen side-on (t = b / half-width), leaning `tilt` up."""
    t = np.clip(b / np.maximum(half_width, 1e-6), -1.0, 1.0)
    side = np.sqrt(1.0 - t * t)
    return _unit(t, np.full_like(b, tilt), side)


def _ellipse(b: np.ndarray, a: np.ndarray, cb: float, ca: float, rb: float, ra: float) -> np.ndarray:
    return ((b - cb) / rb) ** 2 + ((a - ca) / ra) ** 2 <= 1.0


def cone(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a cone standing on the tip: a triangle over an elliptic base rim."""
    apex, rim = 1.0, 0.85
    w = rim * (apex - a) / (apex - BASE)
    body = (a >= BASE) & (a <= apex) & (np.abs(b) <= w)
    base = (a < BASE) & _ellipse(b, a, 0.0, BASE, rim, 0.28)
    nb, na, nz = _round_body(b, np.where(a >= BASE, w, rim), 0.45)
    return body | base, nb, na, nz


def cube(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a cube seen three-quarter on: a front face, a top face and a right face."""
    lo_b, hi_b, lo_a, hi_a, depth = -0.75, 0.5, BASE, 0.45, 0.35
    front = (b >= lo_b) & (b <= hi_b) & (a >= lo_a) & (a <= hi_a)
    da = a - hi_a
    top = (da > 0) & (da <= depth) & (b >= lo_b + da) & (b <= hi_b + da)
    db = b - hi_b
    right = (db > 0) & (db <= depth) & (a >= lo_a + db) & (a <= hi_a + db)
    nb = np.where(right, 0.85, np.where(top, 0.0, -0.15))
    na = np.where(top & ~right, 0.85, 0.0)
    nz = np.where(right | top, 0.5, 0.99)
    nb, na, nz = _unit(nb, na, nz)
    return front | top | right, nb, na, nz


def cylinder(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns an upright cylinder: a shaded body with an elliptic top face and a rounded bottom rim."""
    half, top_a, rim = 0.6, 0.55, 0.3
    body = (np.abs(b) <= half) & (a >= BASE) & (a <= top_a)
    top = _ellipse(b, a, 0.0, top_a, half, rim)
    bottom = (a < BASE) & _ellipse(b, a, 0.0, BASE, half, rim)
    nb, na, nz = _round_body(b, half, 0.0)
    nb, na, nz = np.where(top, 0.0, nb), np.where(top, 0.9, na), np.where(top, 0.45, nz)
    return body | top | bottom, *_unit(nb, na, nz)


def hexagonal(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a hexagonal prism: three flat side facets and a hexagonal top face."""
    half, top_a, rim = 0.85, 0.3, 0.32
    body = (np.abs(b) <= half) & (a >= BASE) & (a <= top_a)
    taper = np.clip((half - np.abs(b)) / (half / 2), 0.0, 1.0) * rim
    top = (np.abs(b) <= half) & (np.abs(a - top_a) <= taper)
    bottom = (a < BASE) & (np.abs(b) <= half) & (BASE - a <= taper)
    t = b / half
    facet = np.where(t < -0.5, -1.0, np.where(t > 0.5, 1.0, 0.0))
    nb, na, nz = facet * 0.82, np.zeros_like(b), np.where(facet == 0, 1.0, 0.57)
    nb, na, nz = np.where(top, 0.0, nb), np.where(top, 0.9, na), np.where(top, 0.45, nz)
    return body | top | bottom, *_unit(nb, na, nz)


def pyramid(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a four-sided pyramid seen on an edge: two flat faces of different brightness."""
    apex, half, front_b, front_a = 1.0, 0.9, 0.15, BASE - 0.22
    w = half * (apex - a) / (apex - BASE)
    body = (a >= BASE) & (a <= apex) & (np.abs(b) <= w)
    # the base corner nearest the camera hangs below the base line, between the two side corners
    left_edge = BASE + (b + half) / (front_b + half) * (front_a - BASE)
    right_edge = BASE + (half - b) / (half - front_b) * (front_a - BASE)
    base = (a < BASE) & (b >= -half) & (b <= half) & (a >= np.where(b <= front_b, left_edge, right_edge))
    ridge_b = front_b * (apex - a) / (apex - front_a)
    left = b < ridge_b
    nb, na, nz = _unit(np.where(left, -0.6, 0.7), np.full_like(b, 0.4), np.where(left, 0.66, 0.6))
    return body | base, nb, na, nz


def sphere(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a sphere resting on the tip."""
    r, ca = 0.9, BASE + 0.9
    inside = b * b + (a - ca) ** 2 <= r * r
    nb, na = b / r, (a - ca) / r
    nz = np.sqrt(np.clip(1.0 - nb * nb - na * na, 0.0, 1.0))
    return inside, nb, na, nz


def cup(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a mug: a cylinder with an open top rim and a ring handle on its right."""
    inside, nb, na, nz = cylinder(b, a)
    ring = (b - 0.75) ** 2 + (a + 0.1) ** 2
    handle = (ring <= 0.38**2) & (ring >= 0.2**2) & (b > 0.6)
    opening = _ellipse(b, a, 0.0, 0.55, 0.55, 0.15)
    nb, na, nz = np.where(handle & ~inside, 0.7, nb), na, np.where(handle & ~inside, 0.7, nz)
    nz = np.where(opening, 0.1, nz)  # the dark inside of the mug
    return inside | handle, *_unit(nb, na, nz)


def ball(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a ball with a curved seam."""
    inside, nb, na, nz = sphere(b, a)
    seam = np.abs(np.sqrt(b * b + (a - 0.6) ** 2) - 0.7) < 0.07
    return inside, nb, na, np.where(seam & inside, 0.15, nz)


def croissant(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a crescent: a disc with an offset disc cut out."""
    ca = BASE + 0.6
    outer = b * b + (a - ca) ** 2 <= 0.85**2
    cut = b * b + (a - ca - 0.55) ** 2 <= 0.6**2
    nb, na = b / 0.85, (a - ca) / 0.85
    nz = np.sqrt(np.clip(1.0 - nb * nb - na * na, 0.05, 1.0))
    return outer & ~cut, *_unit(nb, na, nz)


def beer_cup(b: np.ndarray, a: np.ndarray) -> ShapeOut:
    """Returns a tumbler that widens upwards, with an elliptic open top."""
    top_a, rim = 0.6, 0.2
    w = 0.45 + 0.3 * (a - BASE) / (top_a - BASE)
    body = (a >= BASE) & (a <= top_a) & (np.abs(b) <= w)
    top = _ellipse(b, a, 0.0, top_a, 0.75, rim)
    bottom = (a < BASE) & _ellipse(b, a, 0.0, BASE, 0.45, 0.15)
    nb, na, nz = _round_body(b, np.clip(w, 0.45, 0.75), -0.2)
    nz = np.where(top, 0.2, nz)
    return body | top | bottom, *_unit(nb, na, nz)


SHAPES: dict[str, ShapeFn] = {
    "cone": cone,
    "cube": cube,
    "cylinder": cylinder,
    "hexagonal": hexagonal,
    "pyramid": pyramid,
    "sphere": sphere,
    "cup": cup,
    "ball": ball,
    "croissant": croissant,
    "beer_cup": beer_cup,
}

# how far each silhouette reaches from the object's centre, in object radii (sizes the sprite patches)
EXTENT = 1.35
