"""The procedural dense benchmark: exact normals (finite differences of its depth on planes), valid masks, splits."""

from __future__ import annotations

import numpy as np
import pytest

from mtlens.data import create_benchmark
from mtlens.data.shapes3d_dense import CLASS_NAMES, Shapes3DDense, dense_geometry, pixel_rays
from mtlens.data.shapes3d_render import CAPSULE, CUBE, CYLINDER, SPHERE, Scene
from mtlens.errors import MtlensError


@pytest.mark.parametrize("shape,scale,orientation", [(CUBE, 1.0, 20.0), (SPHERE, 0.75, -30.0), (CYLINDER, 1.25, 0.0),
                                                     (CAPSULE, 1.0, 12.86)])
def test_normals_agree_with_finite_differences_of_depth_on_planes(shape: int, scale: float, orientation: float) -> None:
    scene = Scene(image_size=48)
    cls, depth, normal = dense_geometry(scene, shape, scale, orientation)
    points = depth[..., None] * pixel_rays(scene)  # back-projected surface [H, W, 3]
    fd = np.cross(points[:-1, 1:] - points[:-1, :-1], points[1:, :-1] - points[:-1, :-1])
    fd /= np.maximum(np.linalg.norm(fd, axis=-1, keepdims=True), 1e-12)  # sky pixels: zero vectors
    fd *= -np.sign((fd * points[:-1, :-1]).sum(-1, keepdims=True))  # facing the camera
    n = np.moveaxis(normal, 0, -1)
    # Planes: pixels whose right and lower neighbours have the same class and the same normal.
    plane = (cls[:-1, :-1] != 0) & (cls[:-1, :-1] == cls[1:, :-1]) & (cls[:-1, :-1] == cls[:-1, 1:])
    plane &= np.all(n[:-1, :-1] == n[1:, :-1], -1) & np.all(n[:-1, :-1] == n[:-1, 1:], -1)
    assert plane.sum() > 600  # floor, walls (and the cube's faces)
    angle = np.degrees(np.arccos(np.clip((fd * n[:-1, :-1]).sum(-1), -1, 1)))[plane]
    assert angle.max() < 0.05
    # classes: floor and wall always, the object as its shape, sky above the walls
    assert {1, 2, 3 + shape} <= set(np.unique(cls)) and cls[0].tolist().count(0) > 0


def test_targets_are_valid_where_there_is_a_surface() -> None:
    ds = Shapes3DDense("train", image_size=16, sizes=(6, 2, 2), seed=3)
    batch = ds.__getitems__(list(range(6)))
    seg, depth, normal = (batch["targets"][k].numpy() for k in ("segmentation", "depth", "normal"))
    assert batch["x"].shape == (6, 3, 16, 16) and 0 <= float(batch["x"].min()) and float(batch["x"].max()) <= 1
    sky = seg == 0
    assert np.all(depth[:, 0][sky] == 0) and np.all(normal.transpose(0, 2, 3, 1)[sky] == 0)
    assert np.all(depth[:, 0][~sky] > 0)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1)[~sky], 1.0, atol=1e-5)
    assert seg.max() < len(CLASS_NAMES) and batch["factors"].shape == (6, 6)
    # the object class is its shape factor
    shapes = batch["factors"][:, 4].numpy()
    assert all(set(np.unique(s)) - {0, 1, 2} <= {3 + f} for s, f in zip(seg, shapes))


def test_splits_are_disjoint_and_seeded() -> None:
    parts = {s: create_benchmark("shapes3d_dense", s, sizes=(20, 5, 5), seed=1, image_size=8) for s in ("train", "val", "test")}
    idx = [set(p.indices.tolist()) for p in parts.values()]
    assert [len(i) for i in idx] == [20, 5, 5] and not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    again = Shapes3DDense("train", image_size=8, sizes=(20, 5, 5), seed=1)
    np.testing.assert_array_equal(again.indices, parts["train"].indices)
    assert "procedural dense benchmark" in str(again.source) and "not a real dataset" in str(again.source)
    with pytest.raises(MtlensError, match="unknown split"):
        Shapes3DDense("eval")
