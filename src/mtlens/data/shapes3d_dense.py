"""A procedural dense benchmark with known factors: the Shapes3D room ray-caster, per pixel class, depth, normal.

This is a procedural scene for CPU-scale work, not a real dataset (it is not NYU-v2 or CityScapes). Each image
is one Shapes3D scene (`shapes3d_render`: floor, back and side walls, sky above the walls, one object) with
the six Shapes3D factors (floor/wall/object hue, scale, shape, orientation) on their grid, and three dense
tasks read off the same rays:

- segmentation, 7 classes: sky, floor, wall, cube, cylinder, sphere, capsule (the object's class is its shape);
- depth: the z-depth along the camera's optical axis, in floor units; 0 on the sky (no surface);
- normal: the unit surface normal in the camera frame (x right, y up, z forward into the scene), facing the
  camera (its dot product with the pixel's ray is negative); the zero vector on the sky.

The targets are traced through the pixel centres; the image is the renderer's anti-aliased shading coloured by
the three hues (as the procedural Shapes3D). Depth and normals are exact: on a plane, the normal equals the
one of the surface back-projected from the depth map (the test checks it with finite differences).
Splits are disjoint random draws from the 480,000 factor combinations, seeded.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import torch

from mtlens.data.base import Source
from mtlens.data.registry import BENCHMARKS
from mtlens.data.dense import DenseDataset, DenseTask
from mtlens.data.shapes3d import FACTOR_NAMES, FACTOR_SIZES, RENDER_HUES, readme_value_table
from mtlens.data.shapes3d_render import (SKY, SKY_RGB, Scene, _hit_room, _rot_y, camera_rays, coverage, hit_object,
                                         hue_rgb)
from mtlens.errors import MtlensError

CLASS_NAMES = ("sky", "floor", "wall", "cube", "cylinder", "sphere", "capsule")
TASKS = (DenseTask("segmentation", "segmentation", len(CLASS_NAMES)), DenseTask("depth", "depth"), DenseTask("normal", "normal"))
SPLITS = ("train", "val", "test")
DEFAULT_SIZES = (2000, 500, 500)
_GEOMETRY = (3, 4, 5)  # the factors that move pixels: scale, shape, orientation (hues only recolour)


def _pitch(scene: Scene) -> np.ndarray:
    """Returns the camera-to-world rotation of the pitch (the one `camera_rays` applies)."""
    p = np.deg2rad(scene.pitch_deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, np.cos(p), -np.sin(p)], [0.0, np.sin(p), np.cos(p)]])


def dense_geometry(scene: Scene, shape: int, scale: float, orientation_deg: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (class int64 [H, W] of CLASS_NAMES, z-depth float32 [H, W], camera-frame normal float32 [3, H, W]).

    Rays go through the pixel centres; sky pixels have depth 0 and normal (0, 0, 0).
    """
    centre = replace(scene, supersample=1)
    origin_w, dirs_w = camera_rays(centre)
    grid = dirs_w.shape[1:3]
    rot = _rot_y(-orientation_deg)  # the room turns by +angle: rays turn by -angle in the room's frame (as `trace`)
    d_world = dirs_w.reshape(-1, 3)
    d = d_world @ rot.T
    o = np.broadcast_to(rot @ origin_w, d.shape)
    t_room, cls_room, n_room = _hit_room(o, d, scene)
    t_obj, n_obj = hit_object(o, d, scene, shape, scale)
    on_obj = t_obj < t_room
    # Room classes 0..2 (sky, floor, wall) are the renderer's; the object becomes 3 + its shape.
    cls = np.where(on_obj, 3 + shape, cls_room).astype(np.int64)
    t = np.where(on_obj, t_obj, t_room)
    normal_room = np.where(on_obj[:, None], n_obj, n_room)
    valid = cls != SKY
    pitch = _pitch(scene)
    d_cam = d_world @ pitch  # row vectors: pitch^T applied to each world direction
    depth = np.where(valid, np.where(valid, t, 0.0) * d_cam[:, 2], 0.0)
    n_cam = (normal_room @ rot) @ pitch  # room -> world (rot^T) -> camera (pitch^T), as row vectors
    n_cam /= np.maximum(np.linalg.norm(n_cam, axis=-1, keepdims=True), 1e-12)
    n_cam = np.where(valid[:, None], n_cam, 0.0)
    return (cls.reshape(grid), depth.reshape(grid).astype(np.float32),
            np.moveaxis(n_cam.reshape(*grid, 3), -1, 0).astype(np.float32))


def pixel_rays(scene: Scene) -> np.ndarray:
    """Returns the camera-frame ray (u/f, v/f, 1) of each pixel centre [H, W, 3]: point = z-depth * ray."""
    n = scene.image_size
    c = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    u, v = np.meshgrid(c, -c, indexing="xy")
    return np.stack([u / scene.focal, v / scene.focal, np.ones_like(u)], -1)


class Shapes3DDense(DenseDataset):
    """One split of the procedural dense benchmark (Shapes3D room scenes with class, depth and normal maps)."""

    name = "shapes3d_dense"
    tasks = TASKS
    factor_names = FACTOR_NAMES
    factor_sizes = FACTOR_SIZES

    def __init__(self, split: str = "train", image_size: int = 32, sizes: tuple[int, int, int] = DEFAULT_SIZES,
                 seed: int = 0, scene: Scene | None = None, resize: tuple[int, int] | None = None) -> None:
        if split not in SPLITS:
            raise MtlensError(f"{self.name}: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        if image_size < 8:
            raise MtlensError(f"{self.name}: image_size must be >= 8 pixels, got {image_size}")
        sizes = tuple(int(s) for s in sizes)
        total = int(np.prod(FACTOR_SIZES))
        if len(sizes) != 3 or min(sizes) < 0 or sizes[SPLITS.index(split)] < 1 or sum(sizes) > total:
            raise MtlensError(f"{self.name}: sizes must be (train, val, test) image counts summing to at most {total}, "
                              f"with this split non-empty; got {list(sizes)}")
        self.split, self.seed = split, seed
        self.scene = replace(scene or Scene(), image_size=int(image_size))
        self.image_size = (int(image_size), int(image_size))
        self.resize = None if resize is None else (int(resize[0]), int(resize[1]))
        draw = np.random.default_rng(seed).choice(total, size=sum(sizes), replace=False)
        start = sum(sizes[: SPLITS.index(split)])
        self.indices = np.sort(draw[start:start + sizes[SPLITS.index(split)]]).astype(np.int64)
        self.factors = np.stack(np.unravel_index(self.indices, FACTOR_SIZES), axis=1).astype(np.int64)
        self._table = readme_value_table()
        self._hues = hue_rgb(RENDER_HUES).astype(np.float32)  # [10, 3]
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self.source = Source("renderer", f"procedural dense benchmark (Shapes3D room ray-caster, {image_size} px, "
                                         f"seed {seed}); not a real dataset")

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def factor_value_table(self) -> tuple[np.ndarray, ...]:
        """Returns, per factor, its physical values (the Shapes3D README's)."""
        return self._table

    def _geometry(self, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        key = int(np.ravel_multi_index(tuple(factors[list(_GEOMETRY)]), [FACTOR_SIZES[k] for k in _GEOMETRY]))
        if key not in self._cache:
            scale, shape, ori = (float(self._table[3][factors[3]]), int(factors[4]), float(self._table[5][factors[5]]))
            cov = coverage(self.scene, shape, scale, ori)
            self._cache[key] = (cov, *dense_geometry(self.scene, shape, scale, ori))
        return self._cache[key]

    def _load(self, rows: np.ndarray) -> dict[str, torch.Tensor]:
        factors = self.factors[rows]
        xs, seg, depth, normal = [], [], [], []
        sky = np.asarray(SKY_RGB, dtype=np.float32)
        for f in factors:
            cov, cls, z, n = self._geometry(f)
            colours = np.stack([sky, self._hues[f[0]], self._hues[f[1]], self._hues[f[2]]])  # sky, floor, wall, object
            xs.append(np.clip(np.einsum("chw,ck->khw", cov, colours), 0.0, 1.0))
            seg.append(cls)
            depth.append(z[None])
            normal.append(n)
        return {"x": torch.from_numpy(np.stack(xs)).float(), "segmentation": torch.from_numpy(np.stack(seg)),
                "depth": torch.from_numpy(np.stack(depth)), "normal": torch.from_numpy(np.stack(normal)),
                "factors": torch.from_numpy(factors)}


@BENCHMARKS.register("shapes3d_dense", aliases=("procedural_dense", "dense_scene"))
def shapes3d_dense(split: str = "train", data_dir: str | os.PathLike[str] | None = None, image_size: int = 32,
                   sizes: tuple[int, int, int] = DEFAULT_SIZES, seed: int = 0,
                   resize: tuple[int, int] | None = None) -> Shapes3DDense:
    """Returns one split of the procedural dense benchmark; it renders, so `data_dir` is not read."""
    return Shapes3DDense(split, image_size, sizes, seed, resize=resize)
