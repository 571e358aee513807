"""CelebA (Liu et al. 2015) from its official files: 40 binary attribute tasks, optional landmark regression.

Official layout in `data_dir` (or in a `celeba/` folder under it):

    img_align_celeba/000001.jpg ...   (or img_align_celeba.zip holding img_align_celeba/000001.jpg ...)
    list_attr_celeba.txt              line 1: image count; line 2: the 40 attribute names; then
                                      "<file> v1 ... v40" with v in {-1, 1}
    list_eval_partition.txt           "<file> s" with s = 0 train, 1 val, 2 test (162,770 / 19,867 / 19,962)
    list_landmarks_align_celeba.txt   (landmarks only) count, the 10 coordinate names, "<file> x1 y1 ... x5 y5"

Seed 003 §4.4 / A.4: each attribute is a task (a sigmoid output), the official splits, images resized to
224 x 224; the optional landmark task is the 10 (x, y) coordinates of the five aligned landmarks normalised to
[0, 1] by the 178 x 218 image size, trained with MSE. Batches: `x` float32 [B, 3, S, S] in [0, 1], `targets`
float32 [B, 40] (0/1, one column per attribute task), and with landmarks `landmarks` float32 [B, 10]; `tasks`
lists the 40 binary TaskSpecs and then TaskSpec("landmarks", "regression").

Every text file is parsed and cross-checked when the dataset is built (names, counts, values, the split's
images present in the folder or zip); each error is one line naming the file and the fix.
"""

from __future__ import annotations

import io
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from mtlens.data.base import Source
from mtlens.data.registry import BENCHMARKS
from mtlens.data.paths import resolve_data_dir
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError

ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)
LANDMARKS = ("lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
             "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y")
ALIGNED_WH = (178, 218)  # width, height of the aligned images
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
ATTR_FILE, PARTITION_FILE, LANDMARK_FILE = "list_attr_celeba.txt", "list_eval_partition.txt", "list_landmarks_align_celeba.txt"
IMAGE_DIR = "img_align_celeba"


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise MtlensError(f"{path} is missing; CelebA needs the official {path.name} next to {IMAGE_DIR}/")
    return [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def _table(path: Path, header: tuple[str, ...], values: str) -> tuple[list[str], np.ndarray]:
    """Returns (file names, int values [N, len(header)]) of an official list file with a count and a header line."""
    lines = _lines(path)
    if len(lines) < 2 or not lines[0].strip().isdigit():
        raise MtlensError(f"{path}: line 1 must be the image count and line 2 the column names; is this the official file?")
    names = tuple(lines[1].split())
    if names != header:
        bad = next((i for i, (a, b) in enumerate(zip(names, header)) if a != b), min(len(names), len(header)))
        got = names[bad] if bad < len(names) else "nothing"
        want = header[bad] if bad < len(header) else "nothing"
        raise MtlensError(f"{path}: line 2 must list the {len(header)} official column names; column {bad + 1} is "
                          f"{got!r}, expected {want!r}")
    count, rows = int(lines[0]), lines[2:]
    if len(rows) != count:
        raise MtlensError(f"{path}: line 1 announces {count} images but {len(rows)} rows follow (truncated file?)")
    split = [row.split() for row in rows]
    if all(len(parts) == len(header) + 1 for parts in split):
        # The fast path: one numeric parse of all rows (200k); a short result means a bad value, read row by row below.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            flat = np.fromstring(" ".join(v for parts in split for v in parts[1:]), dtype=np.int64, sep=" ")
        if flat.size == count * len(header):
            return [parts[0] for parts in split], flat.reshape(count, len(header))
    files, table = [], np.empty((count, len(header)), dtype=np.int64)
    for i, row in enumerate(rows):
        parts = row.split()
        try:
            if len(parts) != len(header) + 1:
                raise ValueError
            table[i] = [int(v) for v in parts[1:]]
        except ValueError:
            raise MtlensError(f"{path}: row {i + 3} ({row.strip()[:40]!r}) must be a file name and {len(header)} "
                              f"{values}") from None
        files.append(parts[0])
    return files, table


def _partition(path: Path) -> tuple[list[str], np.ndarray]:
    lines = _lines(path)
    files, codes = [], np.empty(len(lines), dtype=np.int64)
    for i, row in enumerate(lines):
        parts = row.split()
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise MtlensError(f"{path}: row {i + 1} ({row.strip()[:40]!r}) must be '<file> 0|1|2' (train, val, test)")
        files.append(parts[0])
        codes[i] = int(parts[1])
    return files, codes


class CelebA(torch.utils.data.Dataset):
    """One official split of aligned CelebA: 40 attribute tasks (+ landmarks), images decoded on demand."""

    name = "celeba"

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, split: str = "train", landmarks: bool = False,
                 image_size: int | None = 224) -> None:
        if split not in SPLIT_CODES:
            raise MtlensError(f"celeba: unknown split {split!r}; choose one of {', '.join(SPLIT_CODES)}")
        if image_size is not None and image_size < 8:
            raise MtlensError(f"celeba: image_size must be >= 8 pixels (or None for 218 x 178), got {image_size}")
        root = resolve_data_dir(data_dir)
        if root is None:
            raise MtlensError("celeba needs its official files: pass data_dir (or set MTLENS_DATA) to the folder holding "
                              f"{IMAGE_DIR}/ (or {IMAGE_DIR}.zip), {ATTR_FILE} and {PARTITION_FILE}")
        if not (root / ATTR_FILE).is_file() and (root / "celeba" / ATTR_FILE).is_file():
            root = root / "celeba"
        self.root, self.split, self.image_size, self.with_landmarks = root, split, image_size, landmarks
        files, attrs = _table(root / ATTR_FILE, ATTRIBUTES, "attribute values")
        bad = ~np.isin(attrs, (-1, 1))
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise MtlensError(f"{root / ATTR_FILE}: {files[r]} has {attrs[r, c]} for {ATTRIBUTES[c]}; values are -1 or 1")
        part_files, codes = _partition(root / PARTITION_FILE)
        if part_files != files:
            diff = next((i for i, (a, b) in enumerate(zip(part_files, files)) if a != b), min(len(part_files), len(files)))
            raise MtlensError(f"{root / PARTITION_FILE} and {ATTR_FILE} list different images (first difference at row "
                              f"{diff + 1}); use the official files of one download")
        keep = np.flatnonzero(codes == SPLIT_CODES[split])
        if not len(keep):
            raise MtlensError(f"{root / PARTITION_FILE}: no image is in the {split} split (code {SPLIT_CODES[split]})")
        self.files = [files[i] for i in keep]
        self.targets = torch.from_numpy((attrs[keep] > 0).astype(np.float32))
        self.landmarks: torch.Tensor | None = None
        if landmarks:
            lm_files, lm = _table(root / LANDMARK_FILE, LANDMARKS, "integer coordinates")
            if lm_files != files:
                raise MtlensError(f"{root / LANDMARK_FILE} and {ATTR_FILE} list different images; use one download")
            scale = np.tile(np.asarray(ALIGNED_WH, dtype=np.float32), 5)
            self.landmarks = torch.from_numpy(lm[keep].astype(np.float32) / scale)
        self.tasks = tuple(TaskSpec(a, "binary") for a in ATTRIBUTES) + ((TaskSpec("landmarks", "regression"),) if landmarks else ())
        self._zip_path: Path | None = None
        self._zip: zipfile.ZipFile | None = None
        self._open_images(root)

    def _open_images(self, root: Path) -> None:
        folder, archive = root / IMAGE_DIR, root / f"{IMAGE_DIR}.zip"
        if folder.is_dir():
            present, where = set(os.listdir(folder)), folder
        elif archive.is_file():
            try:
                with zipfile.ZipFile(archive) as z:
                    present = {Path(n).name for n in z.namelist() if Path(n).parent.name == IMAGE_DIR}
            except zipfile.BadZipFile:
                raise MtlensError(f"{archive}: not a readable zip archive; download it again") from None
            self._zip_path, where = archive, archive
        else:
            raise MtlensError(f"celeba: neither {folder}/ nor {archive} exists; unpack or place the aligned images there")
        missing = next((f for f in self.files if f not in present), None)
        if missing is not None:
            raise MtlensError(f"{where}: image {missing} of the {self.split} split is missing (incomplete download?)")
        self.source = Source("official", f"CelebA aligned images: {where}")

    def __len__(self) -> int:
        return len(self.files)

    def _bytes(self, name: str) -> bytes:
        if self._zip_path is None:
            return (self.root / IMAGE_DIR / name).read_bytes()
        if self._zip is None:
            self._zip = zipfile.ZipFile(self._zip_path)
        return self._zip.read(f"{IMAGE_DIR}/{name}")

    def _image(self, name: str) -> torch.Tensor:
        from PIL import Image, UnidentifiedImageError  # Pillow comes with matplotlib; only CelebA decodes JPEGs

        try:
            with Image.open(io.BytesIO(self._bytes(name))) as im:
                arr = np.array(im.convert("RGB"), dtype=np.uint8)  # a writable copy
        except (UnidentifiedImageError, OSError) as err:
            raise MtlensError(f"{self.root / IMAGE_DIR / name}: cannot be decoded ({err}); download it again") from None
        return torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)

    def __getitems__(self, rows: list[int]) -> dict[str, torch.Tensor]:
        """Returns {"x" [B, 3, S, S], "targets" [B, 40], and "landmarks" [B, 10] when enabled}."""
        idx = np.asarray(rows, dtype=np.int64)
        images = [self._image(self.files[i]) for i in idx]
        if self.image_size is not None:
            size = (self.image_size, self.image_size)
            images = [F.interpolate(im[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0] for im in images]
        batch = {"x": torch.stack(images).clamp_(0.0, 1.0), "targets": self.targets[idx]}
        if self.landmarks is not None:
            batch["landmarks"] = self.landmarks[idx]
        return batch

    def __getitem__(self, row: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([row]).items()}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_zip"] = None  # an open archive cannot cross into DataLoader workers; each reopens it
        return state


@BENCHMARKS.register("celeba")
def celeba(split: str = "train", data_dir: str | os.PathLike[str] | None = None, landmarks: bool = False,
           image_size: int | None = 224) -> CelebA:
    """Returns one official split of aligned CelebA (40 attributes, optional landmarks)."""
    return CelebA(data_dir, split, landmarks, image_size)
