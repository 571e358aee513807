from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.plots.representation import (plot_embeddings, plot_pca_spectra, plot_reconstructions, plot_similarity,
                                         plot_traversal)

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path: Path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG


def test_every_figure_is_written_as_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = torch.rand(3, 3, 64, 64)
    assert _is_png(plot_reconstructions(x, {"random": x * 0.5, "multi-head": x}, tmp_path / "a" / "rec.png", "t"))
    assert _is_png(plot_traversal(x[0, :1], x[1, :1], np.tile(np.linspace(-1, 1, 4), (2, 1)),
                                  torch.rand(2, 4, 1, 64, 64), tmp_path / "trav.png", "random encoder"))
    coords = {"random": rng.standard_normal((30, 2)), "multi-head": rng.standard_normal((30, 2))}
    assert _is_png(plot_embeddings(coords, rng.random((30, 2)), ["shape", "scale"], tmp_path / "umap.png"))
    assert _is_png(plot_pca_spectra({"a": [0.7, 0.2, 0.1], "b": [0.5, 0.5, 0.0]}, tmp_path / "pca.png", {"a": 1.9}))
    assert _is_png(plot_similarity(["a", "b"], np.array([[1.0, 0.3], [0.3, 1.0]]), tmp_path / "cka.png", "CKA"))


def test_figures_refuse_mismatched_arrays(tmp_path: Path) -> None:
    x = torch.rand(3, 1, 64, 64)
    with pytest.raises(MtlensError, match="reconstructions 'r' have shape"):
        plot_reconstructions(x, {"r": x[:2]}, tmp_path / "r.png")
    with pytest.raises(MtlensError, match="traversal images must be"):
        plot_traversal(x[0], x[1], np.zeros((2, 4)), torch.rand(2, 3, 1, 64, 64), tmp_path / "t.png")
    with pytest.raises(MtlensError, match="embedding 'a' has shape"):
        plot_embeddings({"a": np.zeros((5, 3))}, np.zeros((5, 1)), ["f"], tmp_path / "e.png")
    with pytest.raises(MtlensError, match="must be square"):
        plot_similarity(["a", "b"], np.zeros((2, 3)), tmp_path / "s.png")
