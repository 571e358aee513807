"""Omniglot (Lake et al., 2015) as seed 003 §4.3 uses it: each alphabet a task, its characters the classes.

Files: the official `images_background` (30 alphabets) and `images_evaluation` (20 alphabets) folders, or
their zip files `images_background.zip` / `images_evaluation.zip`, in the data directory (or its `omniglot/`
folder). Layout: `<part>/<Alphabet>/characterNN/<id>_<drawer>.png`, 20 drawings of 105x105 pixels per
character. There is no stand-in: without the files, `OmniglotNotFound` says so (a study catches it to skip).

Tasks: the first n_tasks alphabets in seed 003's fixed random order (App. A.3). Classes: a task's characters
in folder order. Split: per character, a seeded fraction of its drawings is the test set (10% or 20% in seed
003 Fig. 6c, "in the same way as previous work", Yang & Hospedales 2017), fixed across trials by `seed`.
Pixels: 1 for ink, 0 for paper (the files store ink black), kept as uint8 images [N, 1, H, W]; batches of
per-task loaders turn them into float32.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mtlens.data.base import Source
from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.paths import resolve_data_dir, where
from mtlens.data.registry import TASK_DATA
from mtlens.data.task_groups import TaskGroupData
from mtlens.data.tasks import TaskSpec, check_n_tasks
from mtlens.errors import MtlensError

PARTS = ("images_background", "images_evaluation")

# seed 003 App. A.3, "a random ordering of the fifty tasks ... fixed across all trials", in the official folder names
ALPHABET_ORDER: tuple[str, ...] = (
    "Gujarati", "Sylheti", "Arcadian", "Tibetan", "Old_Church_Slavonic_(Cyrillic)", "Angelic",
    "Malay_(Jawi_-_Arabic)", "Sanskrit", "Cyrillic", "Anglo-Saxon_Futhorc", "Syriac_(Estrangelo)", "Ge_ez",
    "Japanese_(katakana)", "Keble", "Manipuri", "Alphabet_of_the_Magi", "Gurmukhi", "Korean", "Early_Aramaic",
    "Atemayar_Qelisayer", "Tagalog", "Mkhedruli_(Georgian)", "Inuktitut_(Canadian_Aboriginal_Syllabics)", "Tengwar",
    "Hebrew", "N_Ko", "Grantha", "Latin", "Syriac_(Serto)", "Tifinagh", "Balinese", "Mongolian", "ULOG", "Futurama",
    "Malayalam", "Oriya", "Ojibwe_(Canadian_Aboriginal_Syllabics)", "Avesta", "Kannada", "Bengali",
    "Japanese_(hiragana)", "Armenian", "Aurek-Besh", "Glagolitic", "Asomtavruli_(Georgian)", "Greek", "Braille",
    "Burmese_(Myanmar)", "Blackfoot_(Canadian_Aboriginal_Syllabics)", "Atlantean",
)
TEST_FRACTIONS = (0.1, 0.2)  # seed 003 Fig. 6c


class OmniglotNotFound(MtlensError):
    """The Omniglot files are not in the data directory (studies catch this to skip the Omniglot experiment)."""


def find_omniglot(data_dir: Path | None) -> dict[str, Path]:
    """Returns {part: folder or zip file} for the official Omniglot parts present under data_dir (folders first)."""
    found: dict[str, Path] = {}
    if data_dir is None:
        return found
    for root in (data_dir, data_dir / "omniglot"):
        for part in PARTS:
            for candidate in (root / part, root / f"{part}.zip"):
                if part not in found and (candidate.is_dir() or candidate.is_file()):
                    found[part] = candidate
    return found


def check_alphabets(data_dir: str | os.PathLike[str] | None, alphabets: Sequence[str]) -> dict[str, Path]:
    """Returns the Omniglot parts found (as `find_omniglot`), or raises one line naming alphabets they lack.

    Lists folder and archive names only (no image is read), so a study can check its data before it runs;
    raises OmniglotNotFound when neither part is there.
    """
    root = resolve_data_dir(data_dir)
    sources = find_omniglot(root)
    if not sources:
        raise OmniglotNotFound(f"omniglot: images_background(.zip) and images_evaluation(.zip) not found {where(root)}; "
                               "get them from https://github.com/brendenlake/omniglot (python/)")
    present: set[str] = set()
    for source in sources.values():
        if source.is_dir():
            present |= {p.name for p in source.iterdir() if p.is_dir()}
            continue
        try:
            with zipfile.ZipFile(source) as archive:
                present |= {n.split("/")[-3] for n in archive.namelist() if n.count("/") >= 2 and n.lower().endswith(".png")}
        except (zipfile.BadZipFile, OSError) as exc:
            raise MtlensError(f"{source}: not a readable zip file ({exc}); re-download it") from None
    missing = [a for a in alphabets if a not in present]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise MtlensError(f"omniglot: alphabet(s) {shown} missing from {', '.join(str(p) for p in sources.values())}; "
                          "use the complete official images_background and images_evaluation")
    return sources


def _png_ink(raw: bytes, where: str) -> np.ndarray:
    """Returns the image as uint8 [H, W]: 1 where ink (dark), 0 on paper."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(raw)) as img:
            grey = np.asarray(img.convert("L"))
    except (UnidentifiedImageError, OSError) as exc:
        raise MtlensError(f"{where}: not a readable PNG image ({exc}); re-download Omniglot") from None
    return (grey < 128).astype(np.uint8)


def _list_drawings(source: Path, wanted: set[str]) -> dict[str, dict[str, list[tuple[str, bytes | Path]]]]:
    """Returns alphabet -> character -> [(file name, path or bytes)] for the wanted alphabets in a folder or zip."""
    out: dict[str, dict[str, list[tuple[str, bytes | Path]]]] = defaultdict(lambda: defaultdict(list))
    if source.is_dir():
        for alphabet in sorted(a for a in wanted if (source / a).is_dir()):
            for char_dir in sorted(p for p in (source / alphabet).iterdir() if p.is_dir()):
                for png in sorted(char_dir.glob("*.png")):
                    out[alphabet][char_dir.name].append((png.name, png))
        return out
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise MtlensError(f"{source}: not a readable zip file ({exc}); re-download it") from None
    with archive:
        for name in sorted(archive.namelist()):
            parts = name.split("/")
            if len(parts) >= 3 and parts[-1].lower().endswith(".png") and parts[-3] in wanted:
                out[parts[-3]][parts[-2]].append((parts[-1], archive.read(name)))
    return out


def load_alphabets(sources: dict[str, Path], alphabets: Sequence[str]) -> dict[str, list[np.ndarray]]:
    """Returns alphabet -> per character (folder order) its drawings as uint8 ink images [n, H, W]."""
    wanted = set(alphabets)
    listed: dict[str, dict[str, list[tuple[str, bytes | Path]]]] = {}
    for part in PARTS:
        if part in sources:
            for alphabet, chars in _list_drawings(sources[part], wanted - set(listed)).items():
                listed[alphabet] = chars
    missing = [a for a in alphabets if a not in listed]
    if missing:
        where = ", ".join(str(p) for p in sources.values())
        raise MtlensError(f"omniglot: alphabet(s) {', '.join(missing)} missing from {where}; "
                          "use the complete official images_background and images_evaluation")
    out: dict[str, list[np.ndarray]] = {}
    shape: tuple[int, ...] | None = None
    for alphabet in alphabets:
        chars = []
        for char, files in sorted(listed[alphabet].items()):
            images = [_png_ink(raw.read_bytes() if isinstance(raw, Path) else raw, f"{alphabet}/{char}/{name}") for name, raw in files]
            shape = shape or images[0].shape
            bad = [name for (name, _), im in zip(files, images) if im.shape != shape]
            if bad:
                raise MtlensError(f"omniglot: {alphabet}/{char}/{bad[0]} is not {shape[0]}x{shape[1]} like the other drawings")
            chars.append(np.stack(images))
        out[alphabet] = chars
    return out


def _split(chars: list[np.ndarray], test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Returns (x_train, y_train, x_test, y_test): per character round(fraction x drawings) test drawings."""
    xtr, ytr, xte, yte = [], [], [], []
    for label, images in enumerate(chars):
        n_test = int(round(test_fraction * len(images)))
        if not 0 < n_test < len(images):
            raise MtlensError(f"omniglot: a character with {len(images)} drawings cannot give a {test_fraction:.0%} test split")
        order = rng.permutation(len(images))
        xte.append(images[np.sort(order[:n_test])])
        xtr.append(images[np.sort(order[n_test:])])
        ytr += [label] * (len(images) - n_test)
        yte += [label] * n_test
    return np.concatenate(xtr), np.asarray(ytr), np.concatenate(xte), np.asarray(yte)


def build_omniglot(
    data_dir: str | os.PathLike[str] | None = None,
    n_tasks: int = 50,
    test_fraction: float = 0.2,
    seed: int = 0,
    alphabets: Sequence[str] | None = None,
) -> TaskGroupData:
    """Returns Omniglot per-task data: the first n_tasks alphabets of App. A.3 (or `alphabets`), a per-character split."""
    if alphabets is None:
        n_tasks = check_n_tasks(n_tasks, "omniglot")
        if n_tasks > len(ALPHABET_ORDER):
            raise MtlensError(f"omniglot: n_tasks must be at most {len(ALPHABET_ORDER)} (the alphabets), got {n_tasks}")
        alphabets = ALPHABET_ORDER[:n_tasks]
    unknown = [a for a in alphabets if a not in ALPHABET_ORDER]
    if unknown or not alphabets or len(set(alphabets)) != len(alphabets):
        raise MtlensError(f"omniglot: alphabets must be distinct official names (e.g. {ALPHABET_ORDER[0]!r}); unknown: {unknown}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise MtlensError(f"omniglot: test_fraction must be in (0, 1) (seed 003 uses 0.1 and 0.2), got {test_fraction}")
    root = resolve_data_dir(data_dir)
    sources = find_omniglot(root)
    if not sources:
        raise OmniglotNotFound(f"omniglot: images_background(.zip) and images_evaluation(.zip) not found {where(root)}; "
                               "get them from https://github.com/brendenlake/omniglot (python/)")
    chars = load_alphabets(sources, alphabets)
    specs, train, test, shapes = [], [], [], []
    sizes = {}
    for alphabet in alphabets:
        # an alphabet's split depends only on the seed and the alphabet, not on which others are loaded
        rng = np.random.default_rng([int(seed), 50, ALPHABET_ORDER.index(alphabet)])
        xtr, ytr, xte, yte = _split(chars[alphabet], float(test_fraction), rng)
        spec = TaskSpec(alphabet, "multiclass", len(chars[alphabet]))

        def part(x: np.ndarray, y: np.ndarray) -> MultiTaskDataset:
            return MultiTaskDataset(torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None].astype(np.float32)), (spec,))

        specs.append(spec)
        train.append(part(xtr, ytr))
        test.append(part(xte, yte))
        shapes.append((1, *xtr.shape[1:]))
        sizes[alphabet] = {"characters": len(chars[alphabet]), "train": len(ytr), "test": len(yte)}
    source = Source("official", "Omniglot " + ", ".join(str(sources[p]) for p in PARTS if p in sources))
    info = {"alphabets": list(alphabets), "test_fraction": float(test_fraction), "split_seed": seed, "datasets": sizes}
    return TaskGroupData("omniglot", tuple(specs), tuple(train), tuple(test), tuple(shapes), source, info)


TASK_DATA.add("omniglot", build_omniglot)
