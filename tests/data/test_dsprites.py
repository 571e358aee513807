import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data import create_factor_dataset
from mtlens.data.dsprites import OFFICIAL_FILE, DSprites
from mtlens.data.dsprites_file import DSpritesFile
from mtlens.data.dsprites_render import FACTOR_SIZES, draw

# a small grid in the official layout: all 6 factors, 2 x 2 positions (2,880 images, ~12 MB of imgs)
SMALL = (1, 3, 6, 40, 2, 2)


@pytest.fixture(autouse=True)
def _no_env_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_CACHE", raising=False)


@pytest.fixture(scope="module")
def ds() -> DSprites:
    return DSprites(renderer="procedural")


def official_arrays(sizes: tuple[int, ...] = SMALL) -> dict[str, np.ndarray]:
    """The three official arrays for the grid `sizes`; image i carries i in binary in its first row."""
    n = int(np.prod(sizes))
    classes = np.stack(np.unravel_index(np.arange(n), sizes), axis=1).astype(np.int64)
    tables = [np.array([1.0]), np.array([1.0, 2.0, 3.0]), np.linspace(0.5, 1, 6), np.linspace(0, 2 * np.pi, 40)]
    tables += [np.linspace(0, 1, s) for s in sizes[4:]]
    values = np.stack([tables[k][classes[:, k]] for k in range(6)], axis=1)
    imgs = np.zeros((n, 64, 64), dtype=np.uint8)
    bits = (np.arange(n)[:, None] >> np.arange(16)) & 1
    imgs[:, 0, :16] = bits
    imgs[:, 5, 5] = 1  # no empty images
    return {"imgs": imgs, "latents_values": values, "latents_classes": classes}


def write_npz(path: Path, arrays: dict[str, np.ndarray], compressed: bool) -> Path:
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def decode(images: torch.Tensor) -> np.ndarray:
    return (images[:, 0, 0, :16].numpy().astype(np.int64) << np.arange(16)).sum(axis=1)


# ---------------------------------------------------------------------- the grid
def test_grid_sizes_and_values(ds: DSprites) -> None:
    assert ds.factor_names == ("color", "shape", "scale", "orientation", "posX", "posY")
    assert ds.factor_sizes == (1, 3, 6, 40, 32, 32) and len(ds) == 737280
    table = ds.factor_value_table
    np.testing.assert_allclose(table[2], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert table[3][0] == 0.0 and table[3][-1] == pytest.approx(2 * np.pi) and len(table[3]) == 40
    assert table[1].tolist() == [1.0, 2.0, 3.0] and table[0].tolist() == [1.0]
    np.testing.assert_allclose(table[4], np.arange(32) / 31)


def test_index_factor_round_trip_in_c_order(ds: DSprites) -> None:
    idx = np.array([0, 1, 32, 1024, 40960, 245760, 737279, 123456, 654321])
    f = ds.factors(idx)
    assert f[0].tolist() == [0, 0, 0, 0, 0, 0] and f[-3].tolist() == [0, 2, 5, 39, 31, 31]
    assert f[1].tolist() == [0, 0, 0, 0, 0, 1]  # posY fastest
    assert f[2].tolist() == [0, 0, 0, 0, 1, 0] and f[3].tolist() == [0, 0, 0, 1, 0, 0]
    assert f[4].tolist() == [0, 0, 1, 0, 0, 0] and f[5].tolist() == [0, 1, 0, 0, 0, 0]
    np.testing.assert_array_equal(ds.index_of(f), idx)
    rng = np.random.default_rng(0)
    r = rng.integers(0, len(ds), 1000)
    np.testing.assert_array_equal(ds.index_of(ds.factors(r)), r)
    v = ds.factor_values([737279])[0]
    np.testing.assert_allclose(v, [1.0, 3.0, 1.0, 2 * np.pi, 1.0, 1.0])


# ---------------------------------------------------------------------- the renderer
def test_renderer_source_and_registry(tmp_path: Path) -> None:
    d = create_factor_dataset("dsprites", data_dir=tmp_path)
    assert d.source.kind == "renderer" and f"official file not found in {tmp_path}" in d.source.detail
    with pytest.raises(MtlensError, match="not found in"):
        DSprites(data_dir=tmp_path, renderer="off")
    with pytest.raises(MtlensError, match="unknown renderer 'fancy'; choose one of: auto, procedural, off"):
        DSprites(renderer="fancy")


def test_renderer_deterministic_binary_and_batched(ds: DSprites) -> None:
    idx = np.random.default_rng(1).integers(0, len(ds), 64)
    a, b = ds.images(idx), ds.images(idx)
    assert a.shape == (64, 1, 64, 64) and a.dtype == torch.float32 and torch.equal(a, b)
    assert set(torch.unique(a).tolist()) == {0.0, 1.0} and (a.sum((1, 2, 3)) > 40).all()
    one_by_one = torch.cat([ds.images([i]) for i in idx[:16]])
    assert torch.equal(one_by_one, a[:16])
    # nothing touches the border: shapes stay inside the image at the extreme positions
    corners = ds.index_of([[0, s, 5, o, x, y] for s in range(3) for o in (0, 5) for x in (0, 31) for y in (0, 31)])
    im = ds.images(corners)[:, 0]
    assert im[:, 0].sum() == 0 and im[:, -1].sum() == 0 and im[:, :, 0].sum() == 0 and im[:, :, -1].sum() == 0


def test_renderer_matches_exact_drawing_at_grid_positions(ds: DSprites) -> None:
    # posX = posY = 0 sits on a whole pixel (centre 16, 16), where the masks are exact
    for s, sc, o in [(0, 5, 0), (1, 2, 7), (2, 4, 13)]:
        im = ds.images(ds.index_of([[0, s, sc, o, 0, 0]]))[0, 0].numpy().astype(bool)
        want = draw(s, 0.5 + 0.1 * sc, 2 * np.pi * o / 39, 16.0, 16.0)
        np.testing.assert_array_equal(im, want)


def test_shapes_differ_and_sizes_match_calibration(ds: DSprites) -> None:
    im = ds.images(ds.index_of([[0, s, 5, 0, 0, 0] for s in range(3)]))[:, 0]
    areas = im.sum((1, 2)).tolist()
    # square 20 x 20 px, ellipse ~pi * 12.76 * 7.22, heart: measured on real frames (400, 288, 222)
    assert areas[0] == 400 and abs(areas[1] - 288) <= 4 and abs(areas[2] - 222) <= 6
    assert not torch.equal(im[0], im[1]) and not torch.equal(im[1], im[2])
    sq = im[0].nonzero()
    assert sq[:, 0].min() == 6 and sq[:, 0].max() == 25 and sq[:, 1].min() == 6 and sq[:, 1].max() == 25


def test_scale_increases_area(ds: DSprites) -> None:
    for s in range(3):
        im = ds.images(ds.index_of([[0, s, k, 3, 10, 20] for k in range(6)]))
        area = im.sum((1, 2, 3)).numpy()
        assert (np.diff(area) > 0).all(), area


def test_positions_move_right_and_down(ds: DSprites) -> None:
    im = ds.images(ds.index_of([[0, 1, 3, 0, x, 10] for x in (0, 1, 15, 31)]))[:, 0]
    cols = torch.arange(64, dtype=torch.float32)
    cx = ((im.sum(1) * cols).sum(1) / im.sum((1, 2))).numpy()
    # centre at 16 + 32 * posX pixels; pixel centres are at i + 0.5
    np.testing.assert_allclose(cx + 0.5, 16 + 32 * np.array([0, 1, 15, 31]) / 31, atol=0.3)
    assert (np.diff(cx) > 0).all()
    im = ds.images(ds.index_of([[0, 0, 3, 0, 10, y] for y in (0, 31)]))[:, 0]
    rows = im.sum(2).nonzero()[:, 1].float()
    assert rows[: len(rows) // 2].mean() < 30 < rows[len(rows) // 2 :].mean()  # posY grows downwards


def test_orientation_rotates_counter_clockwise(ds: DSprites) -> None:
    # orientation index 10 is 10 / 39 * 2 pi ~ 92.3 degrees, index 5 ~ 46 degrees
    sq = ds.images(ds.index_of([[0, 0, 5, o, 0, 0] for o in (0, 5, 39)]))[:, 0]
    assert not torch.equal(sq[0], sq[1]) and torch.equal(sq[0], sq[2])  # 2 pi == 0
    rows, cols = sq[1].nonzero().T
    assert cols.max() - cols.min() + 1 == 26  # on its corner: 26 px wide, as in the real frame
    el = ds.images(ds.index_of([[0, 1, 5, o, 0, 0] for o in (0, 10)]))[:, 0]
    w0, h0 = (el[0].sum(0) > 0).sum(), (el[0].sum(1) > 0).sum()
    w1, h1 = (el[1].sum(0) > 0).sum(), (el[1].sum(1) > 0).sum()
    assert w0 > h0 and h1 > w1  # the ellipse turns from lying to standing
    heart = ds.images(ds.index_of([[0, 2, 5, o, 0, 0] for o in (0, 10)]))[:, 0]
    # the heart's lobes (its mass) sit above the centre at 0 and, turned counter-clockwise, left of it after 90 deg
    c = torch.arange(64, dtype=torch.float32) + 0.5
    cy0 = (heart[0].sum(1) * c).sum() / heart[0].sum()
    cx1 = (heart[1].sum(0) * c).sum() / heart[1].sum()
    assert cy0 < 15.5 and cx1 < 15.5


# ---------------------------------------------------------------------- the official file
@pytest.mark.parametrize("compressed", [False, True])
def test_reads_official_layout(tmp_path: Path, compressed: bool) -> None:
    arrays = official_arrays()
    path = write_npz(tmp_path / OFFICIAL_FILE, arrays, compressed)
    d = DSprites.from_file(path, expected_sizes=None)
    assert d.source.kind == "official" and d.source.detail == str(path)
    assert d.factor_sizes == SMALL and len(d) == 2880
    idx = np.array([0, 1, 2, 3, 4, 2879, 1234])
    im = d.images(idx)
    assert im.shape == (7, 1, 64, 64) and im.dtype == torch.float32
    np.testing.assert_array_equal(decode(im), idx)
    np.testing.assert_array_equal(d.factors(idx), arrays["latents_classes"][idx])
    np.testing.assert_allclose(d.factor_values(idx), arrays["latents_values"][idx])
    np.testing.assert_allclose(d.factor_value_table[4], [0.0, 1.0])
    storage = d._file.storage
    if compressed:
        cache = d._file.cache_path  # next to the file, named after it, the member and the member's CRC-32
        assert cache.parent == tmp_path and cache.name.startswith(OFFICIAL_FILE.split(".")[0] + ".imgs-packed.")
        assert "decompressed once" in storage and "bit-packed" in storage and cache.is_file()
        assert np.load(cache, mmap_mode="r").shape == (2880, 512)
        stamp = cache.stat().st_mtime_ns
        again = DSprites.from_file(path, expected_sizes=None)  # the cache is reused, not rebuilt
        assert cache.stat().st_mtime_ns == stamp and torch.equal(again.images(idx), im)
    else:
        assert "memory-mapped in place" in storage and isinstance(d._file._imgs, np.memmap)


def test_data_dir_finds_the_file_and_checks_the_official_grid(tmp_path: Path) -> None:
    write_npz(tmp_path / OFFICIAL_FILE, official_arrays(), compressed=False)
    grid = r"the factor grid is \(1, 3, 6, 40, 2, 2\), expected \(1, 3, 6, 40, 32, 32\)"
    with pytest.raises(MtlensError, match=grid):
        DSprites(data_dir=tmp_path)
    assert DSprites(data_dir=tmp_path, renderer="procedural").source.kind == "renderer"


def _broken(kind: str) -> dict[str, np.ndarray]:
    a = official_arrays()
    if kind == "missing":
        del a["latents_values"]
    elif kind == "shape":
        a["imgs"] = a["imgs"][:, :32]
    elif kind == "dtype":
        a["imgs"] = a["imgs"].astype(np.int8)
    elif kind == "wide":
        a["imgs"] = a["imgs"].astype(np.uint16)
    elif kind == "classes_dtype":
        a["latents_values"] = a["latents_values"].astype(np.float32)
    elif kind == "rows":
        a["latents_classes"] = a["latents_classes"][:-1]
    elif kind == "order":
        a["latents_classes"] = np.stack(np.unravel_index(np.arange(2880), SMALL), 1)[::-1].copy()
    elif kind == "incomplete":
        a["latents_classes"] = a["latents_classes"].copy()
        a["latents_classes"][7, 5] = 0
    elif kind == "values":
        a["latents_values"] = a["latents_values"].copy()
        a["latents_values"][5, 2] += 1e-14  # float noise is accepted
        a["latents_values"][9, 2] = 0.55
    elif kind == "nonbinary":
        a["imgs"] = a["imgs"].copy()
        a["imgs"][17, 3, 3] = 255
    return a


@pytest.mark.parametrize(
    "kind, message",
    [
        ("missing", r"missing key\(s\) latents_values; expected imgs, latents_values, latents_classes"),
        ("shape", r"'imgs' has shape \(2880, 32, 64\), expected \(N, 64, 64\)"),
        ("dtype", r"'imgs' has dtype int8, expected unsigned integer"),
        ("wide", r"'imgs' has dtype uint16, expected uint8"),
        ("classes_dtype", r"'latents_values' has dtype float32, expected float64"),
        ("rows", r"'latents_classes' has 2879 rows but 'imgs' has 2880"),
        ("order", r"row 0 is \[0, 2, 5, 39, 1, 1\], expected \[0, 0, 0, 0, 0, 0\]; rows must run over the grid in C"),
        ("incomplete", r"'latents_classes' row 7 is \[0, 0, 0, 1, 1, 0\], expected \[0, 0, 0, 1, 1, 1\]"),
        ("values", r"'latents_values' row 9, factor 2 is 0.55"),
    ],
)
def test_malformed_files_are_refused(tmp_path: Path, kind: str, message: str) -> None:
    path = write_npz(tmp_path / OFFICIAL_FILE, _broken(kind), compressed=True)
    with pytest.raises(MtlensError, match=message) as err:
        DSpritesFile(path, expected_sizes=None)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert not list(tmp_path.glob("*.npy*"))  # a refused file leaves no half-built cache


@pytest.mark.parametrize("compressed", [False, True])
def test_non_binary_images_are_refused(tmp_path: Path, compressed: bool) -> None:
    path = write_npz(tmp_path / OFFICIAL_FILE, _broken("nonbinary"), compressed)
    with pytest.raises(MtlensError, match="'imgs' image 17 has values above 1; expected binary images"):
        DSpritesFile(path, expected_sizes=None).read(np.array([3, 17]))
    assert not list(tmp_path.glob("*.npy*"))


def test_not_a_zip_and_pickles_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "junk.npz"
    bad.write_bytes(b"not a zip at all")
    with pytest.raises(MtlensError, match="cannot open as an .npz"):
        DSpritesFile(bad, expected_sizes=None)
    a = official_arrays()
    a["latents_values"] = np.empty((2880, 6), dtype=object)
    path = write_npz(tmp_path / OFFICIAL_FILE, a, compressed=False)
    with pytest.raises(MtlensError, match="holds Python objects"):
        DSpritesFile(path, expected_sizes=None)


def test_read_only_folder_caches_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    path = write_npz(data / OFFICIAL_FILE, official_arrays(), compressed=True)
    monkeypatch.setenv("MTLENS_CACHE", str(tmp_path / "cache"))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == data else real_access(p, mode))
    f = DSpritesFile(path, expected_sizes=None)
    assert f.cache_path.parent == tmp_path / "cache" and f.cache_path.is_file()
    assert not list(data.glob("*.npy"))


@pytest.mark.slow
def test_full_size_official_file(tmp_path: Path) -> None:
    """The exact official path: a full 737,280-image compressed file, found in data_dir (15-50 s, 400 MB disk)."""
    n = int(np.prod(FACTOR_SIZES))
    classes = np.stack(np.unravel_index(np.arange(n), FACTOR_SIZES), axis=1).astype(np.int64)
    ref = DSprites(renderer="procedural")
    values = np.stack([ref.factor_value_table[k][classes[:, k]] for k in range(6)], axis=1)
    marked = np.array([0, 5, 300000, n - 1])
    path = tmp_path / OFFICIAL_FILE
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for key, arr in (("latents_values", values), ("latents_classes", classes)):
            with zf.open(key + ".npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array(fp, arr)
        with zf.open("imgs.npy", "w", force_zip64=True) as fp:
            np.lib.format.write_array_header_1_0(fp, {"descr": "|u1", "fortran_order": False, "shape": (n, 64, 64)})
            chunk = 16384
            for start in range(0, n, chunk):
                block = np.zeros((chunk, 64, 64), dtype=np.uint8)
                hit = marked[(marked >= start) & (marked < start + chunk)]
                block[hit - start] = ref.images(hit)[:, 0].numpy().astype(np.uint8)
                fp.write(block.tobytes())
    d = DSprites(data_dir=tmp_path)
    assert d.source.kind == "official" and len(d) == n
    assert torch.equal(d.images(marked), ref.images(marked))
    assert d.images([1, 2]).sum() == 0
    np.testing.assert_allclose(d.factor_values(marked), values[marked])
