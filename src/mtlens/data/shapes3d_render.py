"""Procedural Shapes3D: a small vectorised ray-caster of the 3D Shapes room (floor, walls, sky, one object).

The scene constants were fitted by eye and by least squares to the 24 real frames of deepmind/3d-shapes'
`3dshapes.gif`: a pinhole camera slightly above the object looks at a room with a back wall and two side
walls; `orientation` turns the whole room (walls and object) about the vertical axis through the object while
the camera and the lights stay put, so the corners slide across the view and the cube turns with the walls.
Lighting is ambient + a headlight along the view direction (it makes walls facing the camera bright and
glancing walls darker, as in the real frames) + a lamp above, behind and to the left of the object that casts
the shadow towards the camera.

The per-pixel work depends only on (shape, scale, orientation): `coverage` returns, for each of the four
surface classes (sky, floor, wall, object), the anti-aliased sum of shading over the pixel's sub-samples, so
an image is `sum_c colour_c * coverage_c` and colouring by the three hues is a lookup.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

SKY, FLOOR, WALL, OBJECT = 0, 1, 2, 3
NUM_CLASSES = 4
CUBE, CYLINDER, SPHERE, CAPSULE = 0, 1, 2, 3

# Measured in the real frames (3dshapes.gif): the sky is this constant light blue.
SKY_RGB = (153 / 255, 226 / 255, 249 / 255)
_EPS = 1e-6


@dataclass(frozen=True)
class Scene:
    """Camera, room, object sizes and lights of the procedural Shapes3D (lengths in floor units)."""

    # Fitted to the 24 real frames: geometry by least squares on sky/floor/wall/object masks, lights on RGB.
    eye_height: float = 1.0
    cam_distance: float = 2.575  # horizontal distance from the camera to the object's axis
    pitch_deg: float = 3.77  # camera looks down by this much
    focal: float = 2.01  # pinhole focal length in half-image units (horizontal fov = 2 atan(1 / focal) = 53 deg)
    back_wall: float = 2.62  # distance from the object's axis to the back wall
    side_wall: float = 3.0  # distance from the object's axis to each side wall
    wall_top: float = 1.89
    # object sizes at scale 1 (the scale factor multiplies all of them)
    cube_half: float = 0.393
    sphere_radius: float = 0.374
    # The sheet shows no cylinder: it takes the capsule's radius and the cube's height.
    cylinder_radius: float = 0.387
    cylinder_half_height: float = 0.393
    capsule_radius: float = 0.387
    capsule_half_length: float = 0.39  # of the straight part; total height = 2 * (radius + half_length)
    ambient: float = 0.27
    headlight: float = 0.69
    lamp: float = 0.52
    lamp_position: tuple[float, float, float] = (-3.3, 14.2, 0.25)  # world frame, object at the origin
    image_size: int = 64
    supersample: int = 2  # rays per pixel side; the real data is anti-aliased


def _rot_y(deg: float) -> np.ndarray:
    """Returns the 3x3 rotation by `deg` degrees about the vertical (y) axis."""
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def camera_rays(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Returns the camera position [3] and unit ray directions [S*S, H, W, 3] in the world frame."""
    n, ss = scene.image_size, scene.supersample
    offs = (np.arange(ss) + 0.5) / ss
    sub = np.stack(np.meshgrid(offs, offs, indexing="ij"), -1).reshape(-1, 2)  # (dy, dx) per sub-sample
    rows = np.arange(n)[None, :, None] + sub[:, 0, None, None]
    cols = np.arange(n)[None, None, :] + sub[:, 1, None, None]
    u = cols / n * 2.0 - 1.0
    v = 1.0 - rows / n * 2.0
    u, v = np.broadcast_arrays(u, v)
    d = np.stack([u, v, np.full_like(u, scene.focal)], -1)
    p = np.deg2rad(scene.pitch_deg)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(p), -np.sin(p)], [0.0, np.sin(p), np.cos(p)]])
    d = d @ pitch.T
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    return np.array([0.0, scene.eye_height, -scene.cam_distance]), d


# ---------------------------------------------------------------- analytic intersections (t = inf: miss)
def _hit_box(o: np.ndarray, d: np.ndarray, centre: np.ndarray, half: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns the entry distance [M] and outward normal [M, 3] of rays against an axis-aligned cube."""
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1 = (centre - half - o) * inv
        t2 = (centre + half - o) * inv
    tlo, thi = np.minimum(t1, t2), np.maximum(t1, t2)
    tlo = np.nan_to_num(tlo, nan=-np.inf)
    thi = np.nan_to_num(thi, nan=np.inf)
    t_in, t_out = tlo.max(-1), thi.min(-1)
    ok = (t_out >= t_in) & (t_in > _EPS)
    axis = tlo.argmax(-1)
    normal = np.zeros_like(d)
    rows = np.arange(len(d))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return np.where(ok, t_in, np.inf), normal


def _hit_sphere(o: np.ndarray, d: np.ndarray, centre: np.ndarray, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns the entry distance [M] and outward normal [M, 3] of rays against a sphere."""
    oc = o - centre
    b = (oc * d).sum(-1)
    c = (oc * oc).sum(-1) - r * r
    disc = b * b - c
    t = -b - np.sqrt(np.maximum(disc, 0.0))
    t = np.where((disc >= 0) & (t > _EPS), t, np.inf)
    normal = (oc + d * np.where(np.isfinite(t), t, 0.0)[:, None]) / r
    return t, normal


def _hit_tube(o: np.ndarray, d: np.ndarray, r: float, y0: float, y1: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns the entry distance [M] and normal [M, 3] of rays against a vertical open tube on the y axis."""
    a = d[:, 0] ** 2 + d[:, 2] ** 2
    b = o[:, 0] * d[:, 0] + o[:, 2] * d[:, 2]
    c = o[:, 0] ** 2 + o[:, 2] ** 2 - r * r
    disc = b * b - a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-b - np.sqrt(np.maximum(disc, 0.0))) / a
    y = o[:, 1] + t * d[:, 1]
    ok = (disc >= 0) & (a > 1e-12) & (t > _EPS) & (y >= y0) & (y <= y1)
    t = np.where(ok, t, np.inf)
    p = o + d * np.where(ok, t, 0.0)[:, None]
    normal = np.stack([p[:, 0], np.zeros_like(t), p[:, 2]], -1) / r
    return t, normal


def _hit_disc(o: np.ndarray, d: np.ndarray, r: float, y: float, up: bool) -> tuple[np.ndarray, np.ndarray]:
    """Returns the distance [M] and normal [M, 3] of rays against a horizontal disc of radius r at height y."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (y - o[:, 1]) / d[:, 1]
    p = o + d * np.where(np.isfinite(t), t, 0.0)[:, None]
    ok = np.isfinite(t) & (t > _EPS) & (p[:, 0] ** 2 + p[:, 2] ** 2 <= r * r)
    normal = np.zeros_like(d)
    normal[:, 1] = 1.0 if up else -1.0
    return np.where(ok, t, np.inf), normal


def _nearest(*hits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Returns the nearest of several (t, normal) hits per ray."""
    ts = np.stack([h[0] for h in hits])
    k = ts.argmin(0)
    rows = np.arange(ts.shape[1])
    normals = np.stack([h[1] for h in hits])
    return ts[k, rows], normals[k, rows]


def hit_object(o: np.ndarray, d: np.ndarray, scene: Scene, shape: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns the distance [M] and outward normal [M, 3] of rays against the object resting on the floor."""
    o = np.broadcast_to(o, d.shape)
    if shape == CUBE:
        h = scene.cube_half * scale
        return _hit_box(o, d, np.array([0.0, h, 0.0]), h)
    if shape == SPHERE:
        r = scene.sphere_radius * scale
        return _hit_sphere(o, d, np.array([0.0, r, 0.0]), r)
    if shape == CYLINDER:
        r, h = scene.cylinder_radius * scale, scene.cylinder_half_height * scale
        return _nearest(_hit_tube(o, d, r, 0.0, 2 * h), _hit_disc(o, d, r, 2 * h, True), _hit_disc(o, d, r, 0.0, False))
    if shape == CAPSULE:
        r, h = scene.capsule_radius * scale, scene.capsule_half_length * scale
        y0, y1 = r, r + 2 * h
        return _nearest(
            _hit_tube(o, d, r, y0, y1),
            _hit_sphere(o, d, np.array([0.0, y0, 0.0]), r),
            _hit_sphere(o, d, np.array([0.0, y1, 0.0]), r),
        )
    raise ValueError(f"unknown shape id {shape}")


def _hit_room(o: np.ndarray, d: np.ndarray, scene: Scene) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns distance [M], class [M] (SKY/FLOOR/WALL) and inward normal [M, 3] where rays leave the room."""
    planes = [  # (axis, coordinate, inward normal, class)
        (1, 0.0, (0.0, 1.0, 0.0), FLOOR),
        (2, scene.back_wall, (0.0, 0.0, -1.0), WALL),
        (0, -scene.side_wall, (1.0, 0.0, 0.0), WALL),
        (0, scene.side_wall, (-1.0, 0.0, 0.0), WALL),
    ]
    ts, normals, classes = [], [], []
    for axis, coord, normal, cls in planes:
        facing = d[:, axis] * -normal[axis] > 0  # the ray moves towards this plane
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (coord - o[:, axis]) / d[:, axis]
        ts.append(np.where(facing & (t > 0), t, np.inf))
        normals.append(np.broadcast_to(np.array(normal), d.shape))
        classes.append(cls)
    ts_arr = np.stack(ts)
    k = ts_arr.argmin(0)
    rows = np.arange(len(d))
    t = ts_arr[k, rows]
    cls = np.asarray(classes)[k]
    y = o[:, 1] + d[:, 1] * np.where(np.isfinite(t), t, 0.0)
    sky = ~np.isfinite(t) | ((cls == WALL) & (y > scene.wall_top))
    return t, np.where(sky, SKY, cls), np.stack(normals)[k, rows]


def trace(scene: Scene, shape: int, scale: float, orientation_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Returns per-sub-sample class ids [S*S, H, W] (int8) and shading [S*S, H, W] (float32, in [0, 1])."""
    origin_w, dirs_w = camera_rays(scene)
    # Turning the room by +angle is the same as turning camera, rays and lamp by -angle in the room's frame.
    rot = _rot_y(-orientation_deg)
    grid = dirs_w.shape[:-1]
    d = dirs_w.reshape(-1, 3) @ rot.T
    o = np.broadcast_to(rot @ origin_w, d.shape)
    lamp = rot @ np.asarray(scene.lamp_position, dtype=np.float64)

    t_room, cls, normal = _hit_room(o, d, scene)
    t_obj, n_obj = hit_object(o, d, scene, shape, scale)
    on_obj = t_obj < t_room
    cls = np.where(on_obj, OBJECT, cls)
    t = np.where(on_obj, t_obj, t_room)
    normal = np.where(on_obj[:, None], n_obj, normal)

    lit = cls != SKY
    p = o + d * np.where(lit, t, 0.0)[:, None]
    to_lamp = lamp - p
    dist = np.linalg.norm(to_lamp, axis=-1)
    to_lamp /= dist[:, None]
    # Only the object can shade the room (the walls never stand between the lamp and the visible floor).
    t_sh, _ = hit_object(p + normal * 1e-4, to_lamp, scene, shape, scale)
    visible = ~((cls != OBJECT) & (t_sh < dist))
    diffuse = np.maximum((normal * to_lamp).sum(-1), 0.0) * visible
    head = np.maximum(-(normal * d).sum(-1), 0.0)
    shade = np.minimum(scene.ambient + scene.headlight * head + scene.lamp * diffuse, 1.0)
    shade = np.where(lit, shade, 1.0)
    return cls.reshape(grid).astype(np.int8), shade.reshape(grid).astype(np.float32)


def coverage(scene: Scene, shape: int, scale: float, orientation_deg: float) -> np.ndarray:
    """Returns float32 [4, H, W]: per class, the mean over sub-samples of shading where that class is hit."""
    cls, shade = trace(scene, shape, scale, orientation_deg)
    onehot = cls[None] == np.arange(NUM_CLASSES, dtype=np.int8)[:, None, None, None]
    return (onehot * shade[None]).mean(1).astype(np.float32)


def hue_rgb(hues: np.ndarray) -> np.ndarray:
    """Returns the RGB [N, 3] of HSV colours with the given hues at full saturation and value."""
    return np.array([colorsys.hsv_to_rgb(float(h), 1.0, 1.0) for h in np.ravel(hues)], dtype=np.float64)
