"""Bad invocations of the `mtlens` command: each exits with code 2 and prints exactly one line on stderr.

To add a case, append a `Bad(...)` row to `BAD`: an id, a function from a `Workspace` (a fresh folder with
ready-made stores, files and a trained run, each built on first use) to the argv, a fragment the error line
must contain, and optionally a `check` run afterwards (e.g. that a planted file did nothing) and `env`
(environment variables for the call). Rows that need a condition (Linux) take pytest marks.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
import torch

from mtlens.cli import main
from mtlens.runs import RunStore

TRAIN_CONFIG = (
    "study: hard_sharing\nvariants: [multi_head]\ndata: {dataset: tiny, n_tasks: 2}\n"
    "train: {epochs: 1, batch_size: 64, progress: false, device: cpu}\n"
)


class Planted:
    """Unpickling this creates a file: the payload of a hostile checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


class Workspace:
    """A fresh folder per case; every attribute is built on first use."""

    def __init__(self, root: Path, trained_template: Callable[[], Path]) -> None:
        self.root = root
        self._trained_template = trained_template

    @cached_property
    def store(self) -> Path:
        """A store with a finished and a failed run."""
        path = self.root / "runs" / "mtlens.sqlite"
        with RunStore(path) as store:
            done = store.create_run("hard_sharing", {"lr": 0.001}, seed=0, name="multi-head")
            store.start(done)
            store.log_metrics(done, 0, {"loss": 2.0})
            store.finish(done)
            failed = store.create_run("single_task", {"lr": 0.1}, seed=1)
            store.fail(failed, "loss became nan", step=1)
        return path

    @cached_property
    def run_id(self) -> str:
        """The id of the finished run of `store`."""
        return RunStore(self.store).list_runs(study="hard_sharing")[0].id

    @cached_property
    def running_store(self) -> Path:
        """A store with one run that is running in this (live) process."""
        path = self.root / "live.sqlite"
        with RunStore(path) as store:
            store.start(store.create_run("s", {}, seed=0))
        return path

    @cached_property
    def empty_file(self) -> Path:
        path = self.root / "empty.sqlite"
        path.touch()
        return path

    @cached_property
    def damaged_store(self) -> Path:
        """A store whose pages after the schema page are garbage."""
        path = self.root / "damaged.sqlite"
        with RunStore(path) as store:
            for seed in range(30):
                store.log_metrics(store.create_run("s", {"pad": "x" * 400}, seed=seed), 0, {"m": 1.0})
        size = path.stat().st_size
        with open(path, "r+b") as handle:
            for page in range(1, size // 4096):
                handle.seek(page * 4096)
                handle.write(b"\x5a" * 4096)
        return path

    @cached_property
    def foreign_weights(self) -> Path:
        """A weights-only state dict whose keys are not a ResNet's."""
        path = self.root / "foreign.pt"
        torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
        return path

    @cached_property
    def partial_omniglot(self) -> Path:
        """An Omniglot folder in the official layout holding one alphabet of the fifty."""
        folder = self.root / "omniglot"
        (folder / "images_background" / "Gujarati" / "character01").mkdir(parents=True)
        return folder

    @cached_property
    def file(self) -> Path:
        """A regular file, to write "through" (file/x.csv)."""
        path = self.root / "a_file"
        path.write_text("not a folder")
        return path

    @cached_property
    def read_only_dir(self) -> Path:
        """A folder this process cannot write into (/sys when running as root, where modes do not bind)."""
        if os.geteuid() == 0:
            return Path("/sys")
        path = self.root / "read_only"
        path.mkdir()
        path.chmod(0o500)
        return path

    @cached_property
    def trained(self) -> tuple[Path, str]:
        """A copy of a store with one trained hard-sharing run (1 epoch on tiny); returns (store, run id)."""
        folder = self.root / "trained"
        shutil.copytree(self._trained_template(), folder)
        store = folder / "s.sqlite"
        return store, RunStore(store).list_runs()[0].id

    @cached_property
    def config(self) -> Path:
        """The study config the trained run was trained with."""
        return self.trained[0].parent / "c.yaml"

    @property
    def marker(self) -> Path:
        """The file a planted checkpoint creates when it is unpickled (it must never exist)."""
        return self.root / "pwned"

    def checkpoint(self, content: bytes | object) -> tuple[Path, str]:
        """Replaces the trained run's checkpoint with bytes or a torch-saved object; returns (store, run id)."""
        store, run_id = self.trained
        path = store.parent / "artifacts" / run_id / "checkpoint.pt"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        return store, run_id

    def resumable(self, content: bytes | object) -> Path:
        """Plants a checkpoint and marks the trained run interrupted, so `train` resumes from it; returns the store."""
        store, run_id = self.checkpoint(content)
        with sqlite3.connect(store) as conn:
            conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (run_id,))
        conn.close()
        return store


@dataclass(frozen=True)
class Bad:
    """One bad invocation: argv from a workspace, a fragment of the expected error line, an optional check."""

    id: str
    argv: Callable[[Workspace], list[str]]
    message: str
    check: Callable[[Workspace], None] | None = None
    marks: tuple = ()
    env: Callable[[Workspace], dict[str, str]] | None = None  # environment variables set for the call


def _train(ws: Workspace, *args: str) -> list[str]:
    """Returns the argv of `mtlens train` on the workspace's config with a fresh store and `args`."""
    return ["train", "--config", str(ws.config), "--store", str(ws.root / "fresh.sqlite"), *args]


def _ordering(ws: Workspace, override: str) -> list[str]:
    return ["reproduce", "ordering", "--preset", "quick", "--store", str(ws.root / "s.sqlite"), "--set", override]


def _eval(ws: Workspace, content: bytes | object) -> list[str]:
    store, run_id = ws.checkpoint(content)
    return ["eval", run_id, "--store", str(store), "--metrics", "mig"]


def _nothing_ran(ws: Workspace) -> None:
    assert not ws.marker.exists(), "a planted checkpoint ran code"


def _filters(ws: Workspace, override: str) -> list[str]:
    return ["reproduce", "filters", "--preset", "quick", "--store", str(ws.root / "f.sqlite"), "--set", override]


def _no_store(ws: Workspace) -> None:
    assert not (ws.root / "f.sqlite").exists(), "a refused study created its run store"


def _still_empty(ws: Workspace) -> None:
    assert ws.empty_file.stat().st_size == 0


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /sys as the unwritable folder")

BAD: list[Bad] = [
    # ---- data
    Bad("data info unknown", lambda ws: ["data", "info", "nope"], "unknown dataset 'nope'"),
    Bad("data info missing data dir", lambda ws: ["data", "info", "tiny", "--data-dir", "/does/not/exist"], "does not exist"),
    Bad("data tasks n-tasks 0", lambda ws: ["data", "tasks", "tiny", "--n-tasks", "0"], "n_tasks must be >= 1"),
    Bad("MTLENS_DATA is a file", lambda ws: ["data", "info", "tiny"], "(from $MTLENS_DATA) is not a folder",
        env=lambda ws: {"MTLENS_DATA": str(ws.file)}),
    Bad("data dir is a file", lambda ws: ["data", "info", "tiny", "--data-dir", str(ws.file)], "is not a folder"),
    Bad("data preview not png", lambda ws: ["data", "preview", "tiny", "--out", str(ws.root / "x.jpg")], "PNG"),
    Bad("data preview through a file", lambda ws: ["data", "preview", "tiny", "--out", str(ws.file / "g.png")],
        "a_file is a file, not a folder"),
    Bad("data preview missing folder", lambda ws: ["data", "preview", "tiny", "--out", str(ws.root / "no" / "g.png")],
        "does not exist; create it first"),
    Bad("data preview to a folder", lambda ws: ["data", "preview", "tiny", "--out", str(ws.root)], "it is a folder"),
    Bad("data preview unwritable", lambda ws: ["data", "preview", "tiny", "--out", str(ws.read_only_dir / "g.png")],
        "is not writable", marks=(linux_only,)),
    Bad("data info nyuv2 absent", lambda ws: ["data", "info", "nyuv2", "--data-dir", str(ws.root)],
        "put the train/ and val/ folders of NYU-v2"),
    # ---- reproduce on the dense benchmarks (issue 15): refused before any run is written
    Bad("reproduce nyuv2 absent", lambda ws: ["reproduce", "balancing", "--preset", "nyuv2", "--data-dir", str(ws.root),
                                              "--store", str(ws.root / "r.sqlite")], "split folder",
        check=lambda ws: None if not (ws.root / "r.sqlite").exists() else pytest.fail("wrote a store")),
    Bad("reproduce cityscapes absent", lambda ws: ["reproduce", "balancing", "--preset", "cityscapes", "--store",
                                                   str(ws.root / "r.sqlite")], "put the train/ and val/ folders of",
        env=lambda ws: {"MTLENS_DATA": str(ws.root)}),
    Bad("reproduce dense_quick on celeba", lambda ws: ["reproduce", "balancing", "--preset", "dense_quick", "--set",
                                                       "data.dataset=celeba", "--store", str(ws.root / "r.sqlite")],
        "has no per-pixel tasks"),
    Bad("reproduce dense_quick with MLP keys", lambda ws: ["reproduce", "balancing", "--preset", "dense_quick", "--set",
                                                         "model.latent_dim=8", "--store", str(ws.root / "r.sqlite")],
        "model.latent_dim is not read here"),
    Bad("reproduce dense_quick weights of another net", lambda ws: [
        "reproduce", "balancing", "--preset", "dense_quick", "--set", "data.options={image_size: 16, sizes: [4, 2, 2]}",
        "--set", f"model.weights={ws.foreign_weights}", "--store", str(ws.root / "r.sqlite")],
        "unexpected encoder.weight"),
    # ---- train
    Bad("train missing config", lambda ws: ["train", "--config", "nope.yaml"], "does not exist"),
    Bad("train unknown key", lambda ws: ["train", "--config", str(ws.config), "--set", "train.epoch=3"],
        "unknown config key 'train.epoch'"),
    Bad("train method level not admitted", lambda ws: _train(ws, "--method", "moco", "--method-level", "feature"),
        "moco is defined on parameter gradients only (it averages gradients across steps"),
    Bad("train method option out of range", lambda ws: _train(ws, "--method", "upgrad", "--set", "method.options.reg_eps=-1"),
        "upgrad: option reg_eps must be a number >= 0, got -1"),
    Bad("train method needs more tasks", lambda ws: _train(ws, "--method", "krum"),
        "krum: with n_byzantine=0 and n_selected=1 it needs at least 3 tasks"),
    Bad("train cr_mogm base of another kind", lambda ws: _train(ws, "--method", "cr_mogm", "--set",
                                                                 "method.options.base=graddrop"),
        "option base must be the name of a Gram-based gradient method that weights the gradients"),
    Bad("train auto_lambda primary out of range", lambda ws: _train(ws, "--method", "auto_lambda", "--set",
                                                                     "method.options.primary=[5]"),
        "(indices must be distinct and in 0 .. 1)"),
    # ---- the ordering study (seed 003)
    Bad("ordering core layers of different shapes", lambda ws: _ordering(ws, "digit_pairs.model.width=[64, 32, 64, 64]"),
        "core layers must all have one shape"),
    Bad("ordering permutation that is not one", lambda ws: _ordering(ws, "digit_pairs.model.permutations=[[0, 1, 1, 3]]"),
        "permutation [0, 1, 1, 3] is not a permutation of the core layers 0..3"),
    Bad("ordering depth 0", lambda ws: _ordering(ws, "tabular.model.depth=0"), "depth D (the number of core layers) must be >= 1, got 0"),
    Bad("ordering unknown encoder", lambda ws: _ordering(ws, "tabular.model.encoder=conv"), "unknown encoder kind 'conv'"),
    Bad("ordering omniglot missing alphabets", lambda ws: ["reproduce", "ordering", "--preset", "paper", "--store",
                                                           str(ws.root / "s.sqlite"), "--data-dir", str(ws.partial_omniglot)],
        "alphabet(s) Sylheti, Arcadian, Tibetan and 46 more missing"),
    # ---- eval
    Bad("eval unknown run", lambda ws: ["eval", "zzz", "--store", str(ws.store)], "no run 'zzz'"),
    Bad("eval planted checkpoint", lambda ws: _eval(ws, {"format": 2, "model": Planted(ws.marker)}),
        "nothing in it was run", check=_nothing_ran),
    Bad("eval garbage checkpoint", lambda ws: _eval(ws, b"\x00garbage" * 40), "is not an mtlens checkpoint"),
    Bad("eval empty checkpoint", lambda ws: _eval(ws, b""), "is empty or truncated"),
    Bad("eval checkpoint missing keys", lambda ws: _eval(ws, {"format": 2, "model": {}}), "lacks 'optimizer'"),
    Bad("eval checkpoint of another model", lambda ws: _eval(ws, {
        **torch.load(ws.trained[0].parent / "artifacts" / ws.trained[1] / "checkpoint.pt", weights_only=True),
        "model": {"encoder.weight": torch.zeros(2)}}), "does not fit this run"),
    Bad("eval empty store", lambda ws: ["eval", "x", "--store", str(ws.empty_file)], "is empty, not a run store",
        check=_still_empty),
    # ---- runs list / show / export
    Bad("runs list missing store", lambda ws: ["runs", "list", "--store", str(ws.root / "nowhere.sqlite")], "no run store at"),
    Bad("runs list unknown status", lambda ws: ["runs", "list", "--store", str(ws.store), "--status", "done"],
        "unknown run status 'done'"),
    Bad("runs list empty file", lambda ws: ["runs", "list", "--store", str(ws.empty_file)], "is empty, not a run store",
        check=_still_empty),
    Bad("runs list damaged", lambda ws: ["runs", "list", "--store", str(ws.damaged_store)], "PRAGMA integrity_check"),
    Bad("runs show damaged", lambda ws: ["runs", "show", "2", "--store", str(ws.damaged_store)], "PRAGMA integrity_check"),
    Bad("runs export damaged", lambda ws: ["runs", "export", "--csv", "-", "--store", str(ws.damaged_store)],
        "PRAGMA integrity_check"),
    Bad("runs show unknown id", lambda ws: ["runs", "show", "abc", "--store", str(ws.store)], "no run 'abc'"),
    Bad("runs export run and study", lambda ws: ["runs", "export", "--csv", "-", "--store", str(ws.store), "--run",
                                                 ws.run_id, "--study", "x"], "not both"),
    Bad("runs export no such study", lambda ws: ["runs", "export", "--csv", str(ws.root / "m.csv"), "--store", str(ws.store),
                                                 "--study", "nosuch"], "no run of study 'nosuch' matched",
        check=lambda ws: None if not (ws.root / "m.csv").exists() else pytest.fail("wrote a CSV for no run")),
    Bad("runs export through a file", lambda ws: ["runs", "export", "--csv", str(ws.file / "m.csv"), "--store", str(ws.store)],
        "a_file is a file, not a folder"),
    Bad("runs export missing folder", lambda ws: ["runs", "export", "--csv", str(ws.root / "no" / "m.csv"), "--store",
                                                  str(ws.store)], "does not exist; create it first"),
    Bad("runs export to a folder", lambda ws: ["runs", "export", "--csv", str(ws.root), "--store", str(ws.store)],
        "it is a folder"),
    Bad("runs export unwritable", lambda ws: ["runs", "export", "--csv", str(ws.read_only_dir / "m.csv"), "--store",
                                              str(ws.store)], "is not writable", marks=(linux_only,)),
    # ---- runs rm
    Bad("runs rm nothing chosen", lambda ws: ["runs", "rm", "--store", str(ws.store)], "say which runs to remove"),
    Bad("runs rm ids and filters", lambda ws: ["runs", "rm", ws.run_id, "--study", "s", "--store", str(ws.store)], "not both"),
    Bad("runs rm unknown id", lambda ws: ["runs", "rm", "zzz", "--store", str(ws.store)], "no run 'zzz'"),
    Bad("runs rm unknown status", lambda ws: ["runs", "rm", "--status", "done", "--store", str(ws.store)],
        "unknown run status 'done'"),
    Bad("runs rm no match", lambda ws: ["runs", "rm", "--study", "nosuch", "--store", str(ws.store)],
        "no run with study 'nosuch'"),
    Bad("runs rm live run", lambda ws: ["runs", "rm", "--status", "running", "--store", str(ws.running_store)],
        "is running"),
    Bad("runs rm empty file", lambda ws: ["runs", "rm", "--status", "failed", "--store", str(ws.empty_file)],
        "is empty, not a run store", check=_still_empty),
    # ---- reproduce filters (seed 001): refused by the study's check, before any run or data
    Bad("filters digit repeated in a group",
        lambda ws: _filters(ws, "sweep.layouts=[{name: mine, groups: [[1, 2, 2], [1, 2, 4], [5, 6, 7], [5, 6, 8]], "
                                "clusters: [[0, 1], [2, 3]]}]"),
        "group 0 is [1, 2, 2]; a digit may appear only once in a group", check=_no_store),
    Bad("filters more groups than digits",
        lambda ws: _filters(ws, "table5.layout={name: big, clustered: {n_clusters: 3, tasks: 2, size: 3, shared: 2}}"),
        "need 12 distinct digits; there are 10", check=_no_store),
    Bad("filters negative beta", lambda ws: _filters(ws, "table5.betas=[0.1, -0.5]"),
        "config key 'table5.betas.1': Input should be greater than or equal to 0 (got -0.5)", check=_no_store),
    Bad("filters d below 1", lambda ws: _filters(ws, "sweep.layouts=[{name: 4x3, latent_dim: 0}]"),
        "config key 'sweep.layouts.0.latent_dim': Input should be greater than or equal to 1 (got 0)", check=_no_store),
    Bad("filters cluster pair names an unknown task",
        lambda ws: _filters(ws, "sweep.layouts=[{name: mine, groups: [[1, 2, 3], [1, 2, 4], [5, 6, 7], [5, 6, 8]], "
                                "clusters: [[0, 1], [2, 7]]}]"),
        "cluster pair (2, 7) names unknown task 7; the layout has tasks 0..3", check=_no_store),
    # ---- the representation studies (issue 14): checked before a run or a report is written
    Bad("decoding single task out of range", lambda ws: ["reproduce", "decoding", "--store", str(ws.root / "f.sqlite"),
                                                         "--set", "single_tasks=[12]"],
        "single_tasks [12] are not task indices 0..9", check=_no_store),
    Bad("decoding non-factor dataset", lambda ws: ["reproduce", "decoding", "--store", str(ws.root / "f.sqlite"),
                                                   "--set", "data.dataset=multimnist"],
        "dataset 'multimnist' has no generative factors", check=_no_store),
    Bad("decoding too few embedded points", lambda ws: ["reproduce", "decoding", "--store", str(ws.root / "f.sqlite"),
                                                        "--set", "embeddings.points=10"],
        "embeddings.points=10 must exceed embeddings.n_neighbors=15", check=_no_store),
    Bad("geometry more points than the test split", lambda ws: ["reproduce", "geometry", "--store",
                                                                str(ws.root / "f.sqlite"), "--set", "points=5000"],
        "points=5000 but the test split holds 800 images", check=_no_store),
    Bad("autoencoders unknown representation", lambda ws: ["reproduce", "autoencoders", "--store",
                                                           str(ws.root / "f.sqlite"), "--set", "representations=[pca]"],
        "Input should be 'ground_truth', 'raw_factors', 'ae', 'vae' or 'factor_vae' (got 'pca')",
        check=_no_store),
    # ---- the command itself
    Bad("unknown command", lambda ws: ["nope"], "No such command"),
]


@pytest.fixture(scope="module")
def trained_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a config and a store holding one trained run (trained once for the module)."""
    folder = tmp_path_factory.mktemp("trained")
    (folder / "c.yaml").write_text(TRAIN_CONFIG)
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--config", str(folder / "c.yaml"), "--store", str(folder / "s.sqlite")])
    assert exit_.value.code == 0
    return folder


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in BAD])
def test_bad_invocation_exits_2_with_one_line(case: Bad, tmp_path: Path, request: pytest.FixtureRequest,
                                              monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace(tmp_path, lambda: request.getfixturevalue("trained_template"))
    argv = case.argv(ws)
    for name, value in (case.env(ws) if case.env else {}).items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()  # what building the workspace printed is not the command's output
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    _, err = capsys.readouterr()
    assert exit_.value.code == 2, f"exit {exit_.value.code}, stderr: {err!r}"
    assert err.count("\n") == 1 and err.startswith("error: "), f"not one line: {err!r}"
    assert case.message in err, err
    if case.check is not None:
        case.check(ws)


@pytest.mark.parametrize("content, message", [
    (lambda ws: {"format": 2, "model": Planted(ws.marker)}, "nothing in it was run"),
    (lambda ws: b"\x00garbage" * 40, "is not an mtlens checkpoint"),
], ids=["planted", "garbage"])
def test_training_over_a_bad_checkpoint_runs_nothing_and_fails_the_cell_in_one_line(
        content: Callable[[Workspace], object], message: str, tmp_path: Path, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    # On the study engine a killed cell resumes from its checkpoint when the study runs again; a checkpoint
    # that cannot be loaded fails that cell (retried once, then recorded with its one-line reason), exit 1.
    ws = Workspace(tmp_path, lambda: request.getfixturevalue("trained_template"))
    store = ws.resumable(content(ws))
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--config", str(ws.config), "--store", str(store), "--backend", "serial", "--quiet"])
    assert exit_.value.code == 1
    _nothing_ran(ws)
    with sqlite3.connect(store) as conn:
        status, error = conn.execute("SELECT status, error FROM runs").fetchone()
    conn.close()
    assert status == "failed" and "\n" not in error and message in error, error
