"""The reports of the decoding, autoencoders and geometry studies, from the store alone: each finished cell's
summary values and the arrays it left in its artifacts (reconstructions, traversals, embeddings, codes)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from mtlens.plots.hard_sharing import PAPER_DATASET
from mtlens.plots.report import Report, mean_std
from mtlens.plots.representation import (embedding_figure, pca_spectra_figure, reconstruction_figure,
                                         similarity_figure, traversal_figure)
from mtlens.studies.representation.geometry import SIMILARITIES
from mtlens.studies.representation.study_parts import load_arrays

ENCODER_ORDER = ("random", "single_task", "multi_head", "one_head", "ae", "vae", "factor_vae")
# The seed's names for our rows (Table 4's columns, Table 1's and Table 6's rows).
PAPER_NAME = {"random": "random", "single_task": "single-task", "multi_head": "multi-task", "one_head": "one-head",
              "ground_truth": "Ground Truth", "ae": "AE", "vae": "VAE", "factor_vae": "FactorVAE"}
TABLE6 = (("table_6a", "mig", "MIG"), ("table_6b", "sap", "SAP"), ("table_6c", "factor_vae", "FactorVAE score"),
          ("table_6d", "dci/informativeness_test", "informativeness (DCI)"),
          ("table_6e", "dci/disentanglement", "disentanglement (DCI)"), ("table_6f", "dci/completeness", "completeness (DCI)"))


def _label(run: Any) -> str:
    """Returns what a cell analyses, without its seed: `multi_head`, `single_task/task_0`, `vae`."""
    return run.cell.name.split("/", 1)[1]


def _order(labels: Sequence[str]) -> list[str]:
    kind = {k: i for i, k in enumerate(ENCODER_ORDER)}
    return sorted(dict.fromkeys(labels), key=lambda s: (kind.get(s.split("/")[0], len(kind)), s))


def _paper_value(rep: Report, key: str, row: str, column: str | None) -> str | None:
    entry = rep.published.get("tables", {}).get(key)
    if entry is None or column is None or column not in entry["columns"] or row not in entry["rows"]:
        return None
    return str(entry["rows"][row][entry["columns"].index(column)])


_Cells = dict[str, dict[str, np.ndarray]]  # a seed's stored arrays by cell label


def _arrays_by_seed(runs: Sequence[Any]) -> dict[int, _Cells]:
    """Returns the stored arrays of the runs, by seed and then by cell label."""
    by_seed: dict[int, _Cells] = defaultdict(dict)
    for r in runs:
        arrays = load_arrays(r)
        if arrays is not None:
            by_seed[r.seed][_label(r)] = arrays
    return by_seed


def _earliest(by_seed: dict[int, _Cells]) -> tuple[int | None, _Cells]:
    """Returns the first seed with stored arrays, and its cells' arrays by label (encoder order)."""
    if not by_seed:
        return None, {}
    seed = min(by_seed)
    return seed, {k: by_seed[seed][k] for k in _order(list(by_seed[seed]))}


def _first_seed(runs: Sequence[Any]) -> tuple[int | None, _Cells]:
    """Returns the first seed with stored arrays, and its cells' arrays by label (encoder order)."""
    return _earliest(_arrays_by_seed(runs))


def _images(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32) / 255.0


# ---------------------------------------------------------------- decoding
def fill_decoding(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Table 4 (ours beside the seed's), the reconstruction grid (Figs. 6 / 9), traversals (Fig. 7) and UMAP
    embeddings (Figs. 5 / 8), the figures from the first seed's cells."""
    column = PAPER_DATASET.get(cfg.data.dataset)
    d = cfg.decoder
    rep.text(f"Dataset {cfg.data.dataset} ({cfg.data.n_tasks} random-MLP tasks). Each encoder is trained as in the "
             f"hard-sharing study ({cfg.train.epochs} epochs; the random encoder is its seeded initialisation), then "
             f"frozen; a Table 2 decoder is trained on its codes for {d.epochs} epochs (batch {d.batch_size}, lr "
             f"{d.lr:g}{'' if d.halve_every is None else f' halved every {d.halve_every} epochs'}, MSE on its "
             f"{d.output} output) on {d.train_images or 'all'} training images.")
    rep.section("Test reconstruction error (seed 000 Table 4 layout)")
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        if r.summary:
            groups[r.params["encoder"]].append(r)
    body = []
    for enc in (e for e in ENCODER_ORDER if e in groups):
        cells = groups[enc]
        paper = _paper_value(rep, "table_4", column or "", PAPER_NAME[enc]) if column else None
        body.append([PAPER_NAME[enc], mean_std([c.summary["reconstruction/mse"] for c in cells], 4),
                     mean_std([c.summary["reconstruction/sse_per_image"] for c in cells], 2), str(len(cells)),
                     paper if paper is not None else "—"])
    rep.table("Test reconstruction error per frozen encoder", ["encoder", "MSE per pixel", "squared error per image",
                                                               "cells", f"paper ({column or 'no column'})"], body,
              note="Mean ± std over seeds (single-task: over seeds and task models). Seed 000 prints dSprites as "
                   "a squared error summed over an image's pixels and Shapes3D / MPI3D per pixel.")
    rep.published_table("table_4")
    seed, arrays = _first_seed(runs)
    if seed is None:
        rep.text("No finished cell left figures.")
        return
    first = next(iter(arrays.values()))
    rep.section(f"Reconstructions, traversals and embeddings (seed {seed})")
    rep.figure("Test reconstructions from each frozen encoder (seed 000 Figs. 6 / 9)",
               reconstruction_figure(_images(first["inputs"]), {k: _images(a["reconstructions"]) for k, a in arrays.items()}),
               "Top row: test inputs; one row per encoder's decoder.")
    for label, a in arrays.items():
        sweep = "the range given" if cfg.figures.traversal_range else "its observed range on the test split"
        rep.figure(f"Latent traversal: {label} encoder (seed 000 Fig. 7)",
                   traversal_figure(_images(a["traversal_input"]), _images(a["traversal_reconstruction"]),
                                    a["traversal_values"], _images(a["traversal_images"])),
                   f"Input, its reconstruction, then one row per latent swept over {sweep}, the others fixed.")
    embedded = {k: a for k, a in arrays.items() if "embedding" in a}
    if embedded:
        some = next(iter(embedded.values()))
        rep.figure("UMAP embeddings of test codes (seed 000 Figs. 5 / 8)",
                   embedding_figure({k: a["embedding"] for k, a in embedded.items()}, some["embedding_factors"],
                                    [str(n) for n in some["factor_names"]]),
                   "One column per encoder, one row per true factor colouring the same test images.")


# ---------------------------------------------------------------- autoencoders
def fill_autoencoders(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Table 1 (heads RMSE per representation) and Table 6 (metrics of each auto-encoder), ours beside the seed's."""
    column = PAPER_DATASET.get(cfg.data.dataset)
    a, t = cfg.autoencoder, cfg.train
    rep.text(f"Dataset {cfg.data.dataset} ({cfg.data.n_tasks} random-MLP tasks). Auto-encoders: {a.epochs} epochs, "
             f"batch {a.batch_size}, lr {a.lr:g}, latent {a.latent_dim}, {a.activation}, on {a.train_images or 'all'} "
             f"training images; heads {list(cfg.heads.hidden)} ({cfg.heads.activation}): {t.epochs} epochs, batch "
             f"{t.batch_size}, lr {t.lr:g}, on the whole training split.")
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        if r.summary:
            groups[r.params["representation"]].append(r)
    order = [k for k in ("ground_truth", "raw_factors", "ae", "vae", "factor_vae") if k in groups]
    rep.section("Multi-task heads on each representation (seed 000 Table 1 layout)")
    body = []
    for k in order:
        paper = _paper_value(rep, "table_1", PAPER_NAME.get(k, ""), column)
        body.append([PAPER_NAME.get(k, "raw factors (upper bound)"),
                     mean_std([c.summary["rmse"] for c in groups[k]], 3),
                     mean_std([c.summary.get("rmse_raw") for c in groups[k]], 3), paper or "—"])
    rep.table("Test RMSE of the multi-task heads per representation",
              ["representation", "RMSE (standardised targets)", "RMSE (raw target units)", f"paper ({column or 'no column'})"],
              body, note="Mean ± std over seeds. The seed prints RMSE in raw target units (its targets are not "
                         "standardised), which depend on the random task networks; compare orderings, not values.")
    rep.published_table("table_1")
    present = [(key, metric, title) for key, metric, title in TABLE6
               if any(metric in c.summary for k in AUTOENCODER_KEYS for c in groups.get(k, []))]
    if present:
        rep.section("Disentanglement of each auto-encoder's codes (seed 000 Table 6 layout)")
        header = ["representation"]
        for _, _, title in present:
            header += [title, f"paper ({column})" if column else "paper"]
        body = []
        for k in (k for k in AUTOENCODER_KEYS if k in groups):
            row = [PAPER_NAME[k]]
            for key, metric, _ in present:
                row += [mean_std([c.summary.get(metric) for c in groups[k]], 3),
                        _paper_value(rep, key, PAPER_NAME[k], column) or "—"]
            body.append(row)
        rep.table("Disentanglement metrics of each auto-encoder", header, body,
                  note="Mean ± std over seeds (each seed trains its own auto-encoder; the seed prints one value).")
    seed, arrays = _first_seed(runs)
    if seed is not None:
        first = next(iter(arrays.values()))
        rep.figure(f"Auto-encoder reconstructions of test images (seed {seed})",
                   reconstruction_figure(_images(first["inputs"]), {k: _images(v["reconstructions"]) for k, v in arrays.items()}),
                   "Top row: test inputs; one row per auto-encoder.")


AUTOENCODER_KEYS = ("ae", "vae", "factor_vae")


# ---------------------------------------------------------------- geometry
def _value_columns(groups: dict[str, list[Any]]) -> list[str]:
    keys = dict.fromkeys(k for cells in groups.values() for c in cells for k in c.summary
                         if k == "effective_dimensionality" or k.startswith("decodability/"))
    return sorted((k for k in keys if "/task/" not in k), key=lambda k: k != "effective_dimensionality")


def fill_geometry(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Per-encoder geometry (mean ± std over seeds), the PCA spectra, and CCA / SVCCA / CKA between encoders."""
    rep.text(f"Dataset {cfg.data.dataset} ({cfg.data.n_tasks} random-MLP tasks); codes of "
             f"{cfg.points or 'all'} test images per encoder; linear decodability by {cfg.folds}-fold cross-validated "
             "linear probes (R² for ordered factors and tasks, accuracy for categorical factors).")
    groups: dict[str, list[Any]] = defaultdict(list)
    for r in runs:
        if r.summary:
            groups[_label(r)].append(r)
    labels = _order(list(groups))
    rep.section("What each encoder keeps")
    columns = _value_columns(groups)
    short = {k: k.replace("decodability/factor/", "").replace("decodability/", "").replace("_", " ") for k in columns}
    body = [[label] + [mean_std([c.summary.get(k) for c in groups[label]], 3) for k in columns] for label in labels]
    rep.table("Effective dimensionality and linear decodability of factors per encoder",
              ["encoder"] + [short[k] for k in columns], body,
              note="Mean ± std over seeds. effective dimensionality: participation ratio of the code covariance "
                   "spectrum; factor mean / task mean: mean decodability over factors / tasks.")
    by_seed = _arrays_by_seed(runs)
    seed, first = _earliest(by_seed)
    if seed is None:
        return
    effective = {k: float(groups[k][0].summary["effective_dimensionality"]) for k in first if groups.get(k)}
    rep.figure(f"PCA spectrum of each encoder's codes (seed {seed})",
               pca_spectra_figure({k: a["explained_ratio"] for k, a in first.items()}, effective),
               "Explained-variance ratio per principal component (log scale); PR: participation ratio.")
    rep.section("How alike the representations are")
    for measure in cfg.similarities:
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        for cells in by_seed.values():
            for i, a in enumerate(labels):
                for b in labels[i + 1:]:
                    if a in cells and b in cells and np.array_equal(cells[a]["indices"], cells[b]["indices"]):
                        values[(a, b)].append(SIMILARITIES[measure](cells[a]["codes"], cells[b]["codes"]))
        cell = {}
        for (a, b), v in values.items():
            cell[(a, b)] = cell[(b, a)] = v
        body = [[a] + ["1" if a == b else mean_std(cell.get((a, b), []), 3) for b in labels] for a in labels]
        rep.table(f"{measure.upper()} between encoders of one seed", ["encoder"] + labels, body,
                  note="Mean ± std over seeds; each pair compares the codes of the same test images.")
        mean = np.array([[1.0 if a == b else (np.mean(cell[(a, b)]) if cell.get((a, b)) else np.nan) for b in labels]
                         for a in labels])
        rep.figure(f"{measure.upper()} between encoders (mean over seeds)", similarity_figure(labels, mean))
