"""Procedural dSprites: the official factor grid drawn on demand, calibrated against real dSprites frames.

Geometry (64 x 64 image, pixel (row r, col c) is on when its centre (c + 0.5, r + 0.5) lies inside the
shape; no anti-aliasing, like the official binary images):

- position: the shape's centre is at 16 + 32 * pos pixels on each axis (pos in [0, 1]); posY grows
  downwards (row index), posX to the right;
- scale multiplies every length; at scale 1 the square's half side is 9.6 px (19.2 px, 20 pixels drawn), the
  ellipse's semi-axes are 12.76 x 7.22 px (major axis horizontal at orientation 0), the heart is 19.2 px wide;
- orientation rotates counter-clockwise as displayed, about the position point;
- heart: the classic parametric heart curve x = 16 sin^3 t, y = 13 cos t - 5 cos 2t - 2 cos 3t - cos 4t,
  scaled by 0.6 in x and 0.662 in y after shifting y by +2.179 (point down at orientation 0).

Every number above was fitted to the 320 real frames of the dSprites animation (deepmind/dsprites-dataset,
`dsprites.gif`, whose sweeps fix each frame's factors): drawn at the exact centre, the mean IoU with the
real frames is 0.999 (0.995 with the sub-pixel quantisation below).

Rendering is by lookup: every (shape, scale, orientation) is drawn once at SUBPIXEL x SUBPIXEL sub-pixel
offsets of its centre and kept as a list of "on" pixel offsets; a batch is a zeroed array with those offsets
set to 1 (one scatter per (shape, scale) group). Positions are therefore quantised to 1/SUBPIXEL px (the grid
spacing is 32/31 px, so exact placement would need 31 x 31 variants per mask).
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 64
FACTOR_NAMES = ("color", "shape", "scale", "orientation", "posX", "posY")
FACTOR_SIZES = (1, 3, 6, 40, 32, 32)
SHAPE_NAMES = ("square", "ellipse", "heart")

# Values of the official latents_values (dSprites README: scale 6 values in [0.5, 1], orientation 40 values
# in [0, 2 pi] with both ends included, positions 32 values in [0, 1]; shape is coded 1, 2, 3).
FACTOR_VALUES: tuple[np.ndarray, ...] = (
    np.array([1.0]),
    np.array([1.0, 2.0, 3.0]),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2.0 * np.pi, 40),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)

# Fitted to the real frames (see the module docstring); lengths in pixels at scale 1.
POSITION_START = 16.0
POSITION_SPAN = 32.0
SQUARE_HALF_SIDE = 9.6
ELLIPSE_SEMI_AXES = (12.76, 7.22)
HEART_SCALE = (0.6, 0.662)
HEART_Y_SHIFT = 2.179

SUBPIXEL = 4  # sub-pixel steps per axis at which masks are drawn
_WINDOW = 15  # masks live in a (2 * _WINDOW + 1)^2 window around the anchor pixel
_HEART_STEPS = 8192  # intervals of the uniform |x| table of the heart's edges


def _heart_bounds() -> np.ndarray:
    """Returns [2, _HEART_STEPS + 1]: the heart curve's upper and lower y at |x| = 0 .. 16, evenly spaced."""
    t = np.linspace(0.0, np.pi, 20001)
    x = 16.0 * np.sin(t) ** 3
    y = 13.0 * np.cos(t) - 5.0 * np.cos(2 * t) - 2.0 * np.cos(3 * t) - np.cos(4 * t)
    half = len(t) // 2  # t = pi/2: x is largest; x rises on [0, pi/2] (upper edge), falls on [pi/2, pi]
    grid = np.linspace(0.0, 16.0, _HEART_STEPS + 1)
    top = np.interp(grid, x[: half + 1], y[: half + 1])
    bottom = np.interp(grid, x[half:][::-1], y[half:][::-1])
    return np.stack([top, bottom])


_HEART = _heart_bounds()


def inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Returns a bool array: whether the points (u right, v up; pixels at scale 1) lie inside shape `shape`."""
    if shape == 0:
        return np.maximum(np.abs(u), np.abs(v)) <= SQUARE_HALF_SIDE
    if shape == 1:
        a, b = ELLIPSE_SEMI_AXES
        return (u / a) ** 2 + (v / b) ** 2 <= 1.0
    x = np.abs(u) / HEART_SCALE[0]
    y = v / HEART_SCALE[1] - HEART_Y_SHIFT
    # linear interpolation in the uniform table (np.interp's binary search was most of the build time)
    pos = np.minimum(x, 16.0) * (_HEART_STEPS / 16.0)
    i = np.minimum(pos.astype(np.int64), _HEART_STEPS - 1)
    f = pos - i
    top = _HEART[0, i] * (1 - f) + _HEART[0, i + 1] * f
    bottom = _HEART[1, i] * (1 - f) + _HEART[1, i + 1] * f
    return (x <= 16.0) & (y <= top) & (y >= bottom)


def draw(shape: int, scale: float, orientation: float, cx: float, cy: float, size: int = IMAGE_SIZE) -> np.ndarray:
    """Returns a bool [size, size] image of one shape centred at (cx, cy) pixels, drawn exactly (slow path)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    return _inside_rotated(shape, scale, orientation, xx - cx, -(yy - cy))


def _inside_rotated(
    shape: int, scale: float, theta: np.ndarray | float, dx: np.ndarray, dy_up: np.ndarray
) -> np.ndarray:
    """Returns whether offsets (dx right, dy_up up) from the centre fall inside the rotated, scaled shape."""
    c, s = np.cos(theta), np.sin(theta)
    u = (dx * c + dy_up * s) / scale
    v = (-dx * s + dy_up * c) / scale
    return inside(shape, u, v)


def position_anchors(num: int = 32, steps: int = SUBPIXEL) -> tuple[np.ndarray, np.ndarray]:
    """Returns (anchor pixel, sub-pixel step) per position index: centre ~ anchor + step / steps."""
    centre = POSITION_START + POSITION_SPAN * np.linspace(0.0, 1.0, num)
    anchor = np.floor(centre).astype(np.int64)
    step = np.rint((centre - anchor) * steps).astype(np.int64)
    carry = step == steps
    return anchor + carry, np.where(carry, 0, step)


class MaskTable:
    """The "on" pixels of every (shape, scale, orientation, sub-pixel y, sub-pixel x) variant.

    `groups[shape * 6 + scale][v]` lists the flat offsets (row * 64 + col) of the pixels of variant
    v = (orientation * steps + sub_y) * steps + sub_x relative to its anchor pixel, padded to the group's
    longest list by repeating the first offset (setting a pixel to 1 twice is harmless, and equal-length rows
    let a whole group be gathered and scattered at once); `counts` holds the true lengths.
    """

    def __init__(self, steps: int = SUBPIXEL) -> None:
        self.steps = steps
        w = _WINDOW
        d = np.arange(-w, w + 1, dtype=np.float64)
        sub = np.arange(steps) / steps
        # axes: orientation, sub-y, sub-x, row, col
        dx = (d[None, None, None, None, :] + 0.5) - sub[None, None, :, None, None]
        dy_up = -((d[None, None, None, :, None] + 0.5) - sub[None, :, None, None, None])
        th = FACTOR_VALUES[3][:, None, None, None, None]
        rows, cols = np.mgrid[-w : w + 1, -w : w + 1]
        flat = (rows * IMAGE_SIZE + cols).astype(np.int32).ravel()
        self.groups: list[np.ndarray] = []
        counts = []
        for shape in range(3):
            for scale in FACTOR_VALUES[2]:
                m = _inside_rotated(shape, float(scale), th, dx, dy_up)
                # the window must hold the whole shape, or shapes would be clipped silently
                assert not (m[..., 0, :].any() or m[..., -1, :].any() or m[..., 0].any() or m[..., -1].any())
                m = m.reshape(-1, flat.size)
                count = m.sum(axis=1)
                longest = int(count.max())
                # stable sort puts each row's "on" pixels first, in raster order
                first = np.argsort(~m, axis=1, kind="stable")[:, :longest]
                pix = np.where(np.arange(longest) < count[:, None], first, first[:, :1])
                self.groups.append(flat[pix])
                counts.append(count)
        self.counts = np.concatenate(counts).astype(np.int64)
        self.anchor, self.sub = position_anchors(FACTOR_SIZES[4], steps)

    @property
    def nbytes(self) -> int:
        """Returns the memory held by the offset tables, in bytes."""
        return sum(g.nbytes for g in self.groups)

    def render(self, classes: np.ndarray) -> np.ndarray:
        """Returns float32 images [N, 64, 64] in {0, 1} for factor class rows [N, 6] (official order)."""
        n = len(classes)
        shape, scale, orient, px, py = (classes[:, k] for k in range(1, 6))
        group = shape * 6 + scale
        variant = (orient * self.steps + self.sub[py]) * self.steps + self.sub[px]
        base = np.arange(n, dtype=np.int64) * (IMAGE_SIZE * IMAGE_SIZE) + self.anchor[py] * IMAGE_SIZE + self.anchor[px]
        # np.zeros gets pages the kernel has already zeroed: cheaper than zeroing ourselves
        out = np.zeros(n * IMAGE_SIZE * IMAGE_SIZE, dtype=np.float32)
        order = np.argsort(group, kind="stable")
        bounds = np.searchsorted(group[order], np.arange(len(self.groups) + 1))
        for g, table in enumerate(self.groups):
            sel = order[bounds[g] : bounds[g + 1]]
            if sel.size:
                out[(table[variant[sel]] + base[sel, None]).ravel()] = 1.0
        return out.reshape(n, IMAGE_SIZE, IMAGE_SIZE)
