"""The typed dataset factories, the dataset kinds, the data directory checks and the Source vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtlens import MtlensError
from mtlens.cli import main
from mtlens.data import (
    SOURCE_KINDS,
    FactorDataset,
    Source,
    TaskGroupData,
    TaskSplits,
    available_datasets,
    create_factor_dataset,
    create_task_data,
    dataset_kind,
)
from mtlens.data.omniglot import OmniglotNotFound
from mtlens.data.tiny import TinyShapes

FACTOR = ["dsprites", "mpi3d_complex", "mpi3d_real", "mpi3d_realistic", "mpi3d_toy", "shapes3d", "tiny"]
TASK_DATA = ["digit_pairs", "grouped_mnist", "multimnist", "omniglot", "random_patterns", "tabular"]
BENCHMARK = ["celeba", "cityscapes", "nyuv2", "shapes3d_dense"]
SHARED_INPUTS = {"multimnist", "grouped_mnist"}
# small builds of each task data set, so that every registered dataset is built in this file
SMALL = {"multimnist": {"n": 40, "n_test": 10}, "grouped_mnist": {"n": 40}, "digit_pairs": {"n": 10},
         "tabular": {"datasets": ["iris"]}, "random_patterns": {"n": 8}}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_DATA", raising=False)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return int(exc.value.code), out, err


def test_kinds_list_every_name_once() -> None:
    assert available_datasets("factor") == FACTOR
    assert available_datasets("task_data") == TASK_DATA
    assert available_datasets("benchmark") == BENCHMARK
    assert available_datasets() == sorted(FACTOR + TASK_DATA + BENCHMARK)
    assert "mnist" not in available_datasets()  # the digit images are an input of the task data, not a dataset kind
    assert [dataset_kind(n) for n in ("dsprites", "3DShapes", "multimnist")] == ["factor", "factor", "task_data"]
    with pytest.raises(MtlensError, match="unknown dataset kind 'images'; choose one of: factor, task_data, benchmark"):
        available_datasets("images")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", FACTOR + TASK_DATA)
def test_every_dataset_builds_with_its_factory_and_a_known_source(name: str, tmp_path: Path) -> None:
    if dataset_kind(name) == "factor":
        built: object = create_factor_dataset(name, data_dir=tmp_path)
        assert isinstance(built, FactorDataset)
    elif name == "omniglot":  # no stand-in: without the official files it says so (tests/data/test_omniglot.py)
        with pytest.raises(OmniglotNotFound):
            create_task_data(name, data_dir=tmp_path)
        return
    else:
        built = create_task_data(name, data_dir=tmp_path, **SMALL[name])
        assert isinstance(built, TaskSplits if name in SHARED_INPUTS else TaskGroupData)
        assert built.describe()["n_tasks"] == built.n_tasks == len(built.names)
    assert built.source.kind in SOURCE_KINDS  # type: ignore[attr-defined]


def test_wrong_kind_is_one_line_naming_the_other_factory() -> None:
    with pytest.raises(MtlensError) as err:
        create_factor_dataset("multimnist")
    assert str(err.value) == (
        "'multimnist' is task data (inputs with their tasks' targets), not a factor dataset; "
        "use create_task_data('multimnist')"
    )
    with pytest.raises(MtlensError, match=r"^'dsprites' is a factor dataset \(images with generative factors, no "
                                          r"tasks\), not task data; use create_factor_dataset\('dsprites'\)$"):
        create_task_data("dsprites")


def test_unknown_names_and_options_are_named() -> None:
    with pytest.raises(MtlensError, match=r"unknown dataset 'mnist'; factor datasets: dsprites, .*; task data: digit_"):
        create_task_data("mnist")
    assert isinstance(create_factor_dataset("tiny", image_size=16, num_positions=2), TinyShapes)
    with pytest.raises(MtlensError, match=r"^tiny: unknown option\(s\) image_sise; its options are: image_size, "
                                          r"num_positions, data_dir$"):
        create_factor_dataset("tiny", image_sise=16)
    with pytest.raises(MtlensError, match=r"^mpi3d_toy: unknown option\(s\) variant; its options are: data_dir, cache_dir$"):
        create_factor_dataset("mpi3d_toy", variant="real")


def test_data_dir_that_is_a_file_is_not_a_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 10: MTLENS_DATA / --data-dir pointing at a file says so, not that it does not exist."""
    file = tmp_path / "dsprites.npz"
    file.write_bytes(b"")
    with pytest.raises(MtlensError, match=r"data directory '.*dsprites.npz' \(from --data-dir\) is not a folder; "):
        create_factor_dataset("tiny", data_dir=file)
    monkeypatch.setenv("MTLENS_DATA", str(file))
    code, out, err = run(["data", "info", "dsprites"], capsys)
    assert code == 2 and err.count("\n") == 1 and "(from $MTLENS_DATA) is not a folder" in err
    with pytest.raises(MtlensError, match=r"\(from --data-dir\) does not exist"):
        create_task_data("multimnist", data_dir=tmp_path / "nope")


def test_source_kinds_are_one_vocabulary() -> None:
    assert SOURCE_KINDS == ("official", "renderer", "stand-in")
    assert Source("renderer", "drawn").is_official is False and str(Source("official", "/x")) == "official: /x"
    with pytest.raises(ValueError, match="unknown source kind 'bundled'; use one of official, renderer, stand-in"):
        Source("bundled", "scikit-learn")  # type: ignore[arg-type]


def test_cli_lists_kinds_and_describes_task_data(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["data", "list"], capsys)
    rows = [line.split("\t") for line in out.splitlines()]
    assert code == 0 and ["dsprites", "factor"] in rows and ["multimnist", "task_data"] in rows
    assert len(rows) == len(FACTOR + TASK_DATA + BENCHMARK)
    code, out, _ = run(["data", "info", "grouped_mnist", "--json"], capsys)
    desc = json.loads(out)
    assert code == 0 and desc["n_tasks"] == 4 and desc["source"].startswith("stand-in")
    code, _, err = run(["data", "preview", "multimnist", "--out", "x.png"], capsys)
    assert code == 2 and "multimnist is task data, not a factor dataset; this command takes one of: dsprites" in err
