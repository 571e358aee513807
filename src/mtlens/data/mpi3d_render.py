"""The procedural MPI3D stand-in: an arm holding a coloured object over a coloured rail, seen from 3 heights.

Not the real MPI3D. The scene copies the layout of the real (toy) images: a grey floor, a coloured rail
(the `background_color` factor) curving behind the arm, an upright column ending in a joint, a thin rod from
the joint to the object. `horizontal_axis` turns the rod about the vertical (the object swings along an arc
from left through the front to right), `vertical_axis` tilts it down from near-upright to below horizontal,
`camera_height` moves the camera between three heights looking at the arm. The geometry (focal length, camera
distance and heights, rail radius, column height) was fitted by least squares to positions measured on the
published toy sample sheet (rail apex and ends, column base and top, per camera height).

Static parts (floor, rail, column) are ray-cast once per (camera, rail colour) with 4x4 supersampling; the rod
is an anti-aliased segment precomputed per (camera, horizontal, vertical); the object is a shaded silhouette
(mpi3d_shapes) cached per (shape, size, on-screen angle, scale, foreshortening) and composited per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mtlens.data import mpi3d_shapes

IMAGE = 64
# fitted to the toy sample sheet (see module docstring)
FOCAL = 250.0
CAM_DIST = 10.0
CAM_HEIGHTS = (8.835, 6.259, 4.150)  # top, center, bottom
CAM_LOOK_Z = (0.523, 0.619, 0.787)
RAIL_RADIUS, RAIL_WIDTH = 2.48, 0.44
COLUMN_HEIGHT, COLUMN_RADIUS = 1.0, 0.13
BASE_RING = (0.19, 0.27)  # inner and outer radius of the light ring at the column's foot
ROD_LENGTH, ROD_WIDTH_PX = 0.5, 1.2
OBJECT_RADIUS = (0.16, 0.28)  # small, large
TILT_RANGE = np.deg2rad((12.0, 112.0))  # vertical_axis: angle of the rod from the vertical
AZIMUTH_RANGE = np.deg2rad((-100.0, 60.0))  # horizontal_axis: 0 leans towards the camera, < 0 to its left
LIGHT = np.array([-0.45, 0.65, 0.6]) / np.linalg.norm([-0.45, 0.65, 0.6])  # image x right, y up, z to viewer
ANGLE_BINS, SCALE_STEP, SQUASH_STEP = 48, 0.04, 0.1


@dataclass(frozen=True)
class Palette:
    """RGB colours (0..1) of the scene's parts; rails are indexed by the background_color factor."""

    floor: tuple[float, float, float]
    platform: tuple[float, float, float]
    rails: tuple[tuple[float, float, float], ...]
    column: tuple[float, float, float]
    ring: tuple[float, float, float]
    rod: tuple[float, float, float]


def _rgb(*values: int) -> tuple[float, float, float]:
    return (values[0] / 255.0, values[1] / 255.0, values[2] / 255.0)


# measured on the toy sample sheet: floor grey 52, rails purple / sea green / salmon, light-grey arm
TOY_PALETTE = Palette(
    floor=_rgb(52, 52, 52),
    platform=_rgb(49, 49, 49),
    rails=(_rgb(100, 75, 141), _rgb(72, 99, 95), _rgb(106, 76, 85)),
    column=_rgb(150, 150, 150),
    ring=_rgb(165, 165, 165),
    rod=_rgb(115, 115, 115),
)
# measured on the real sample sheet: near-black surroundings, a dark green-grey platform, a black arm
REAL_PALETTE = Palette(
    floor=_rgb(12, 18, 14),
    platform=_rgb(42, 52, 45),
    rails=(_rgb(105, 95, 165), _rgb(70, 110, 95), _rgb(125, 85, 95)),
    column=_rgb(40, 42, 42),
    ring=_rgb(60, 70, 70),
    rod=_rgb(30, 32, 32),
)


def camera_frame(k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (position, right, up, forward) of camera height k (0 top, 1 center, 2 bottom)."""
    pos = np.array([0.0, -CAM_DIST, CAM_HEIGHTS[k]])
    fwd = np.array([0.0, 0.0, CAM_LOOK_Z[k]]) - pos
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    return pos, right, np.cross(right, fwd), fwd


def project(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns image column u, row v (pixel centres at integers) and depth of world points [..., 3]."""
    pos, right, up, fwd = camera_frame(k)
    d = points - pos
    depth = d @ fwd
    c = (IMAGE - 1) / 2.0
    return c + FOCAL * (d @ right) / depth, c - FOCAL * (d @ up) / depth, depth


def _lambert(n: np.ndarray) -> np.ndarray:
    return 0.45 + 0.65 * np.clip(n @ LIGHT, 0.0, None)


def static_layer(k: int, palette: Palette, rail: int, supersample: int = 4) -> np.ndarray:
    """Returns the [3, 64, 64] float32 image of floor, platform, rail, foot ring and column for camera k."""
    s = supersample
    grid = (np.arange(IMAGE * s) + 0.5) / s - 0.5
    vv, uu = np.meshgrid(grid, grid, indexing="ij")
    pos, right, up, fwd = camera_frame(k)
    c = (IMAGE - 1) / 2.0
    rays = fwd + ((uu - c) / FOCAL)[..., None] * right - ((vv - c) / FOCAL)[..., None] * up
    img = np.empty(rays.shape, dtype=np.float64)
    img[:] = palette.floor
    # floor z = 0: platform inside the rail, the rail on its far half, the light ring at the column's foot
    t = -pos[2] / np.minimum(rays[..., 2], -1e-9)
    hit = pos + t[..., None] * rays
    radius = np.hypot(hit[..., 0], hit[..., 1])
    img[radius < RAIL_RADIUS - RAIL_WIDTH / 2] = palette.platform
    on_rail = (np.abs(radius - RAIL_RADIUS) <= RAIL_WIDTH / 2) & (hit[..., 1] > 0)
    img[on_rail] = palette.rails[rail]
    img[(radius >= BASE_RING[0]) & (radius <= BASE_RING[1])] = palette.ring
    # the column: a vertical cylinder, shaded by its normal, with darker bands between its segments
    ox, oy = pos[0], pos[1]
    dx, dy = rays[..., 0], rays[..., 1]
    qa = dx * dx + dy * dy
    qb = 2 * (ox * dx + oy * dy)
    qc = ox * ox + oy * oy - COLUMN_RADIUS**2
    disc = qb * qb - 4 * qa * qc
    tc = (-qb - np.sqrt(np.clip(disc, 0, None))) / (2 * qa)
    side = pos + tc[..., None] * rays
    on_side = (disc > 0) & (side[..., 2] >= 0) & (side[..., 2] <= COLUMN_HEIGHT)
    normal = np.stack([side[..., 0], side[..., 1], np.zeros_like(tc)], -1) / COLUMN_RADIUS
    n_img = np.stack([normal @ right, normal @ up, -(normal @ fwd)], -1)
    band = np.where((side[..., 2] * 5) % 1.0 < 0.18, 0.6, 1.0)
    shade = _lambert(n_img) * band
    img[on_side] = np.asarray(palette.column) * shade[on_side, None]
    t_top = (COLUMN_HEIGHT - pos[2]) / np.minimum(rays[..., 2], -1e-9)
    cap = pos + t_top[..., None] * rays
    img[np.hypot(cap[..., 0], cap[..., 1]) <= COLUMN_RADIUS] = np.asarray(palette.column) * 1.1
    img = img.reshape(IMAGE, s, IMAGE, s, 3).mean(axis=(1, 3))
    return np.clip(img, 0, 1).transpose(2, 0, 1).astype(np.float32)


@dataclass(frozen=True)
class ArmPoses:
    """Per (camera, horizontal, vertical) and object size: where the rod and the object are on screen."""

    joint_uv: np.ndarray  # [3, 2] the column's top
    tip_uv: np.ndarray  # [3, nh, nv, 2] the rod's end
    centre_uv: np.ndarray  # [2 sizes, 3, nh, nv, 2] the object's centre
    angle: np.ndarray  # [3, nh, nv] on-screen direction of the rod, clockwise from up, radians
    squash: np.ndarray  # [3, nh, nv] on-screen / true length of the rod's axis (foreshortening)
    px_per_unit: np.ndarray  # [2 sizes, 3, nh, nv] perspective scale at the object


def arm_poses(nh: int, nv: int) -> ArmPoses:
    """Returns the arm's screen geometry for every camera height, axis value and object size."""
    az = np.linspace(*AZIMUTH_RANGE, nh)[:, None]
    tilt = np.linspace(*TILT_RANGE, nv)[None, :]
    ones = np.ones((nh, nv))
    direction = np.stack([np.sin(tilt) * np.sin(az), -np.sin(tilt) * np.cos(az), np.cos(tilt) * ones], -1)
    joint = np.array([0.0, 0.0, COLUMN_HEIGHT])
    joints, tips, angles, squashes = [], [], [], []
    centres = np.zeros((len(OBJECT_RADIUS), 3, nh, nv, 2))
    scales = np.zeros((len(OBJECT_RADIUS), 3, nh, nv))
    step = 1e-3
    for k in range(3):
        ju, jv, _ = project(joint, k)
        tu, tv, tdepth = project(joint + ROD_LENGTH * direction, k)
        su, sv, _ = project(joint + (ROD_LENGTH + step) * direction, k)
        du, dv = (su - tu) / step, (sv - tv) / step
        joints.append((ju, jv))
        tips.append(np.stack([tu, tv], -1))
        angles.append(np.arctan2(du, -dv))
        squashes.append(np.clip(np.hypot(du, dv) / (FOCAL / tdepth), 0.0, 1.0))
        for i, r in enumerate(OBJECT_RADIUS):
            # the object sits on the tip with its base (a = BASE in object units) touching it
            cu, cv, cdepth = project(joint + (ROD_LENGTH - mpi3d_shapes.BASE * r) * direction, k)
            centres[i, k] = np.stack([cu, cv], -1)
            scales[i, k] = FOCAL / cdepth
    return ArmPoses(
        joint_uv=np.array(joints),
        tip_uv=np.stack(tips),
        centre_uv=centres,
        angle=np.stack(angles),
        squash=np.stack(squashes),
        px_per_unit=scales,
    )


@dataclass
class Ragged:
    """Variable-length pixel lists stored flat: entries start[i] .. start[i] + count[i] belong to item i."""

    start: np.ndarray  # [items] int64
    count: np.ndarray  # [items] int64
    dv: np.ndarray  # [entries] row offset (or row) of each covered pixel
    du: np.ndarray  # [entries] column offset (or column)
    alpha: np.ndarray  # [entries] coverage in (0, 1]
    shade: np.ndarray  # [entries] brightness factor

    def gather(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns, for the entries of `items` laid end to end, their item position and their flat entry index."""
        counts = self.count[items]
        owner = np.repeat(np.arange(len(items)), counts)
        first = np.cumsum(counts) - counts
        entry = np.arange(int(counts.sum())) - first[owner] + self.start[items][owner]
        return owner, entry

    @staticmethod
    def build(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> Ragged:
        """Returns the ragged store of per-item (dv, du, alpha, shade) arrays."""
        count = np.array([len(p[0]) for p in parts], dtype=np.int64)
        start = np.cumsum(count) - count
        cat = [np.concatenate([p[j] for p in parts]) if parts else np.zeros(0) for j in range(4)]
        return Ragged(start, count, cat[0].astype(np.int64), cat[1].astype(np.int64), *(c.astype(np.float32) for c in cat[2:]))

    def extend(self, other: Ragged) -> Ragged:
        """Returns this store with the items of `other` appended after its own."""
        return Ragged(
            np.concatenate([self.start, other.start + len(self.dv)]),
            np.concatenate([self.count, other.count]),
            *(np.concatenate([getattr(self, f), getattr(other, f)]) for f in ("dv", "du", "alpha", "shade")),
        )


def rod_pixels(poses: ArmPoses) -> Ragged:
    """Returns the anti-aliased pixels (row, column, coverage) of the rod for every (camera, h, v), flattened."""
    nh, nv = poses.tip_uv.shape[1:3]
    reach = int(np.ceil(np.abs(poses.tip_uv - poses.joint_uv[:, None, None, :]).max())) + 2
    items, rows_out, cols_out, covers = [], [], [], []
    for k in range(3):
        ju, jv = np.round(poses.joint_uv[k]).astype(int)
        rows = np.arange(max(jv - reach, 0), min(jv + reach + 1, IMAGE))
        cols = np.arange(max(ju - reach, 0), min(ju + reach + 1, IMAGE))
        rr, cc = (g.ravel() for g in np.meshgrid(rows, cols, indexing="ij"))
        rel = np.stack([cc - poses.joint_uv[k, 0], rr - poses.joint_uv[k, 1]], -1)
        seg = poses.tip_uv[k].reshape(-1, 2) - poses.joint_uv[k]
        t = np.clip((rel @ seg.T) / np.maximum((seg * seg).sum(1), 1e-9), 0.0, 1.0).T
        dist = np.hypot(rel[None, :, 0] - t * seg[:, None, 0], rel[None, :, 1] - t * seg[:, None, 1])
        cover = np.clip(ROD_WIDTH_PX / 2 + 0.5 - dist, 0.0, 1.0)
        item, pix = np.nonzero(cover)  # row-major: grouped by item, in item order
        items.append(item + k * nh * nv)
        rows_out.append(rr[pix])
        cols_out.append(cc[pix])
        covers.append(cover[item, pix])
    item = np.concatenate(items)
    count = np.bincount(item, minlength=3 * nh * nv).astype(np.int64)
    alpha = np.concatenate(covers).astype(np.float32)
    return Ragged(
        np.cumsum(count) - count, count, np.concatenate(rows_out), np.concatenate(cols_out), alpha, np.ones_like(alpha)
    )


def draw_sprites(
    shape_fn: mpi3d_shapes.ShapeFn, angle: np.ndarray, radius: np.ndarray, squash: np.ndarray, half: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Returns per sprite the covered pixel offsets (dv, du) from its centre, their coverage and shade.

    A sprite is the silhouette turned to `angle` (radians clockwise from up), `radius` pixels per object unit,
    shortened along its axis by `squash`; coverage and shade are averaged over 2 x 2 samples per pixel.
    """
    ss = 2
    offsets = np.arange(-half, half + 1)
    n = len(offsets)
    fine = (offsets[:, None] + ((np.arange(ss) + 0.5) / ss - 0.5)[None, :]).ravel().astype(np.float32)
    dv, du = np.meshgrid(fine, fine, indexing="ij")
    # float32 halves the memory traffic of the shape functions, the bulk of a cold cache's cost
    s, c = (f(angle).astype(np.float32)[:, None, None] for f in (np.sin, np.cos))
    a = (du * s - dv * c) / (radius * squash).astype(np.float32)[:, None, None]
    b = (du * c + dv * s) / radius.astype(np.float32)[:, None, None]
    inside, nb, na, nz = shape_fn(b, a)
    lit = (0.45 + 0.65 * np.clip((nb * c + na * s) * LIGHT[0] - (nb * s - na * c) * LIGHT[1] + nz * LIGHT[2], 0, None)) * inside
    m = len(angle)
    cover = inside.reshape(m, n, ss, n, ss).mean(axis=(2, 4))
    shade = lit.reshape(m, n, ss, n, ss).mean(axis=(2, 4)) / np.maximum(cover, 1e-6)
    out = []
    for i in range(m):
        rows, cols = np.nonzero(cover[i])
        out.append((offsets[rows], offsets[cols], cover[i, rows, cols], shade[i, rows, cols]))
    return out


class ArmSceneRenderer:
    """Renders MPI3D-style stand-in images [N, 3, 64, 64] from factor rows (color, shape, size, camera, rail, h, v).

    Deterministic: an image depends only on its factor row; the sprite cache fills as new poses are asked for,
    and every cached sprite is computed from its own key alone.
    """

    def __init__(self, shapes: tuple[str, ...], colors: np.ndarray, palette: Palette, nh: int = 40, nv: int = 40) -> None:
        self.shapes = shapes
        self.colors = np.asarray(colors, dtype=np.float32)
        self.palette = palette
        self._rod_color = np.asarray(palette.rod, dtype=np.float32)
        self.poses = arm_poses(nh, nv)
        n_rails = len(palette.rails)
        layers = [static_layer(k, palette, r) for k in range(3) for r in range(n_rails)]
        self._static = np.stack(layers).reshape(3 * n_rails, -1)
        self._rods = rod_pixels(self.poses)
        # sprite keys: on-screen angle, radius in pixels (log steps), foreshortening, each binned
        self._angle_bin = np.round(self.poses.angle / (2 * np.pi) * ANGLE_BINS).astype(np.int64) % ANGLE_BINS
        radius_px = np.asarray(OBJECT_RADIUS)[:, None, None, None] * self.poses.px_per_unit
        self._radius_bin = np.round(np.log(radius_px) / np.log1p(SCALE_STEP)).astype(np.int64)
        self._squash_bin = np.round(np.clip(self.poses.squash, 0.5, 1.0) / SQUASH_STEP).astype(np.int64)
        self._half = int(np.ceil(mpi3d_shapes.EXTENT * (1 + SCALE_STEP) * radius_px.max())) + 1
        self._centre = np.round(self.poses.centre_uv).astype(np.int64)  # [sizes, 3, nh, nv, (u, v)]
        self._round = np.array([s in ("sphere", "ball") for s in shapes])
        self._slots: dict[int, int] = {}
        self._sprites = Ragged.build([])

    def _sprite_codes(self, shape: np.ndarray, size: np.ndarray, cam: np.ndarray, h: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Returns one integer key per image for its object's sprite."""
        angle = self._angle_bin[cam, h, v]
        radius = self._radius_bin[size, cam, h, v]
        squash = np.where(self._round[shape], 10, self._squash_bin[cam, h, v])  # a ball looks round from anywhere
        return ((shape * ANGLE_BINS + angle) * 1000 + radius) * 100 + squash

    def _sprite_slots(self, codes: np.ndarray) -> np.ndarray:
        """Returns the cache slot of each sprite key, drawing the sprites not drawn before."""
        unique, inverse = np.unique(codes, return_inverse=True)
        missing = np.array([c for c in unique.tolist() if c not in self._slots], dtype=np.int64)
        if len(missing):
            squash = (missing % 100) * SQUASH_STEP
            radius = (1 + SCALE_STEP) ** ((missing // 100) % 1000)
            angle = ((missing // 100_000) % ANGLE_BINS) * (2 * np.pi / ANGLE_BINS)
            shape = missing // (100_000 * ANGLE_BINS)
            drawn: dict[int, tuple[np.ndarray, ...]] = {}
            for sid in np.unique(shape).tolist():
                pick = np.nonzero(shape == sid)[0]
                for chunk in np.array_split(pick, -(-len(pick) // 128)):
                    fn = mpi3d_shapes.SHAPES[self.shapes[sid]]
                    for i, part in zip(chunk, draw_sprites(fn, angle[chunk], radius[chunk], squash[chunk], self._half)):
                        drawn[int(i)] = part
            for i, code in enumerate(missing.tolist()):
                self._slots[code] = len(self._slots)
            self._sprites = self._sprites.extend(Ragged.build([drawn[i] for i in range(len(missing))]))
        slots = np.array([self._slots[c] for c in unique.tolist()], dtype=np.int64)
        return slots[inverse.reshape(-1)]

    def render(self, factors: np.ndarray) -> torch.Tensor:
        """Returns float32 images [N, 3, 64, 64] in [0, 1] for factor rows [N, 7] of value indices."""
        color, shape, size, cam, rail, h, v = (np.asarray(factors[:, i], dtype=np.int64) for i in range(7))
        n, plane = len(factors), IMAGE * IMAGE
        # one spare element at the end takes the writes of object pixels that fall outside the frame
        buf = np.empty(n * 3 * plane + 1, dtype=np.float32)
        images = buf[:-1].reshape(n, 3 * plane)
        np.take(self._static, cam * len(self.palette.rails) + rail, axis=0, out=images, mode="clip")
        chans = np.arange(3) * plane
        # the rod, over the static scene
        nh, nv = self.poses.tip_uv.shape[1:3]
        owner, entry = self._rods.gather((cam * nh + h) * nv + v)
        idx = (owner * (3 * plane) + self._rods.dv[entry] * IMAGE + self._rods.du[entry])[:, None] + chans
        alpha = self._rods.alpha[entry][:, None]
        under = buf[idx]
        buf[idx] = under + alpha * (self._rod_color - under)
        # the object, over the rod
        slots = self._sprite_slots(self._sprite_codes(shape, size, cam, h, v))
        owner, entry = self._sprites.gather(slots)
        centre = self._centre[size, cam, h, v][owner]
        rows = centre[:, 1] + self._sprites.dv[entry]
        cols = centre[:, 0] + self._sprites.du[entry]
        inside = (rows >= 0) & (rows < IMAGE) & (cols >= 0) & (cols < IMAGE)
        flat = np.where(inside, owner * (3 * plane) + rows * IMAGE + cols, len(buf) - 1)
        idx = flat[:, None] + np.where(inside[:, None], chans, 0)
        value = np.minimum(self.colors[color[owner]] * self._sprites.shade[entry][:, None], 1.0)
        alpha = self._sprites.alpha[entry][:, None]
        under = buf[idx]
        buf[idx] = under + alpha * (value - under)
        return torch.from_numpy(images.reshape(n, 3, IMAGE, IMAGE))
