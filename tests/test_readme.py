"""Every command and Python block of README.md runs, so the README cannot drift from the code (issue 9).

Fast (default suite): each `mtlens` line runs in a fresh folder with the same arguments plus a tiny config
(`--set` overrides after the README's own, the serial backend, no progress display); `RUN_ID` is a run of that
folder's store; `make` lines are checked with `make -n` (the target exists and its recipe expands). Lines that
need a local Ray instance run only in the slow test, and are listed in RAY_LINES so that none is skipped
silently. Python blocks run as written. Slow (`-m slow`): every line exactly as written (hours on 2 cores:
the paper-sized presets of the sweep and balancing lines).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from _cli import run_cli
from mtlens.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
TINY = {
    "hard_sharing": ["data.dataset=tiny", "data.n_tasks=2", "data.subset=96", "model.head_hidden=[16]",
                     "train.epochs=1", "variants=[multi_head, random]", "metrics.names=[mig]",
                     "metrics.options={mig: {num_train: 100}}"],
    "balancing": ["data.dataset=tiny", "data.n_tasks=2", "data.subset=96", "model.head_hidden=[16]",
                  "train.epochs=1", "measures.every=1", "measures.last=2"],
    "filters": ["seeds=[0]", "train.epochs=1", "table5.n=60", "table5.betas=[0.1]", "sweep.n=60", "sweep.betas=[0.1]",
                "sweep.layouts=[{name: fig2_left}]", "table4.n=60", "table4.n_test=20", "table4.epochs=1",
                "table4.betas=[0.01]", "table4.variants=[filters, mtvib]"],
    "ordering": ["seeds=[0]", "variants=[parallel, soft]", "fitting.cores=[linear]",
                 "fitting.linear={width: 8, n_values: [8], steps: 5}", "digit_pairs.n_tasks=[2]", "digit_pairs.n_train=16",
                 "digit_pairs.model={iterations: 4, batch_size: 4, eval_every: 2, width: 8, encoder: frozen, trace_every: 2}",
                 "tabular.datasets=[iris]", "tabular.model={iterations: 4, batch_size: 4, eval_every: 2, width: 8}"],
    "decoding": ["data.dataset=tiny", "data.n_tasks=2", "data.subset=96", "model.head_hidden=[16]", "train.epochs=1",
                 "encoders=[random, multi_head]", "decoder.epochs=1", "decoder.train_images=32", "figures.examples=3",
                 "figures.traversal_steps=3", "embeddings.points=0"],
    "autoencoders": ["data.dataset=tiny", "data.n_tasks=2", "data.subset=96", "representations=[ground_truth, ae]",
                     "autoencoder.epochs=1", "autoencoder.train_images=32", "heads.hidden=[16]", "train.epochs=1",
                     "metrics.names=[mig]", "metrics.options={mig: {num_train: 100}}", "examples=3"],
    "geometry": ["data.dataset=tiny", "data.n_tasks=2", "data.subset=96", "model.head_hidden=[16]", "train.epochs=1",
                 "encoders=[random, multi_head, ae]", "autoencoder.epochs=1", "autoencoder.train_images=32", "folds=3"],
}
#: Presets whose data is not the study's usual kind get their own tiny config (the dense benchmark's model keys).
TINY_PRESETS = {
    "architectures": ["data.dataset=tiny", "data.n_tasks=2", "data.subset=96", "model.head_hidden=[16]",
                      "train.epochs=1", "variants=[multi_head, mtan, ltb]", "metrics.names=[mig]",
                      "metrics.options={mig: {num_train: 100}}"],
    "dense_quick": ["data.options={image_size: 16, sizes: [4, 2, 2], seed: 0}", "model.head_options={width: 8}",
                    "train.epochs=1", "train.batch_size=4", "train.eval_batch_size=4", "methods.names=[ew]",
                    "measures.every=1", "measures.last=1"],
}
RAY_LINES = {"mtlens reproduce balancing --preset quick --backend ray --workers 2"}


def blocks(language: str) -> list[str]:
    """Returns the README's fenced code blocks of one language, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README, re.S | re.M)


def command_lines() -> list[str]:
    """Returns every command of the bash blocks, without its trailing comment."""
    lines = []
    for block in blocks("bash"):
        for line in block.splitlines():
            command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
            if command:
                lines.append(command)
    return lines


def _study(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        key = arg.replace("-", "_")
        if key.split("/")[0] in TINY and (i == 1 or argv[i - 1] in ("--config", "-c") or argv[0] == "sweep"):
            return key.split("/")[0]
    return None


def tiny(argv: list[str]) -> list[str]:
    """Returns the README command with the tiny config appended (the README's own overrides stay first)."""
    study = _study(argv)
    if argv[0] not in ("train", "reproduce", "sweep", "report") or study is None or "--list" in argv:
        return argv
    own = {argv[i + 1].split("=")[0] for i, a in enumerate(argv[:-1]) if a == "--set"}
    preset = argv[argv.index("--preset") + 1] if "--preset" in argv[:-1] else None
    extra = [kv for kv in TINY_PRESETS.get(preset, TINY[study]) if kv.split("=")[0] not in own]  # the README's own stay
    if study == "balancing" and "--method" not in argv and not any(kv.startswith("methods.names=") for kv in extra):
        extra.append("methods.names=[ew, mgda]")
    out = argv + [x for kv in extra for x in ("--set", kv)]
    return out if argv[0] == "report" else out + ["--backend", "serial", "--quiet"]



def _run_lines(lines: list[str], tmp_path: Path, capsys, monkeypatch, make_tiny: bool) -> None:
    monkeypatch.chdir(tmp_path)
    for line in lines:
        words = shlex.split(line)
        if words[0] == "make":
            proc = subprocess.run(["make", "-n", *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0 and proc.stdout.strip(), (line, proc.stderr)
            continue
        assert words[0] == "mtlens", f"README command {line!r} is neither an mtlens nor a make command"
        argv = words[1:]
        if "RUN_ID" in argv:
            run_id = RunStore("runs/mtlens.sqlite").list_runs(study="hard_sharing")[-1].id
            argv = [run_id if a == "RUN_ID" else a for a in argv]
        code, out, err = run_cli(tiny(argv) if make_tiny else argv, capsys)
        assert code == 0, f"README command {line!r} failed: {err or out}"


def test_the_readme_has_commands_and_python() -> None:
    lines = command_lines()
    assert "mtlens reproduce hard-sharing --preset quick" in lines  # the main job
    assert RAY_LINES <= set(lines), "a Ray line left the README: update RAY_LINES"
    assert len(blocks("python")) >= 2


def test_every_readme_command_runs_on_a_tiny_config(tmp_path: Path, capsys, monkeypatch) -> None:
    lines = [line for line in command_lines() if line not in RAY_LINES]
    _run_lines(lines, tmp_path, capsys, monkeypatch, make_tiny=True)
    assert (tmp_path / "grid.png").is_file() and (tmp_path / "runs.csv").is_file()
    assert (tmp_path / "runs" / "reports" / "hard_sharing_quick" / "report.html").is_file()


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_every_readme_python_block_runs(index: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks("python")[index], f"README.md python block {index + 1}", "exec"), {"__name__": "__readme__"})


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("ray", reason="the README's Ray lines need the extra: pip install 'mtlens[ray]'")
    _run_lines(command_lines(), tmp_path, capsys, monkeypatch, make_tiny=False)
