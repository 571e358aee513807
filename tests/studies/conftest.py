"""Shared runs for the study tests: both landed studies on the tiny configs recorded before the engine
(run once per session, serially with 1 torch thread), and a helper that checks a report in chromium."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mtlens.studies import load_study_config, run_study

PORT_CONFIGS = {
    # The configs of reference/record_pre_engine.py in today's schema (metrics_options -> metrics.options,
    # methods -> methods.names); hard sharing runs seed 0 of the two recorded.
    "hard_sharing": (
        "study: hard_sharing\nseeds: [0]\nvariants: [multi_head, one_head, single_task, random]\nsingle_tasks: [1]\n"
        "data: {dataset: tiny, n_tasks: 2, subset: 96}\nmodel: {latent_dim: 4, head_hidden: [16]}\n"
        "train: {epochs: 2, batch_size: 16, log_every: 2}\n"
        "metrics: {names: [mig, sap], options: {mig: {num_train: 200}, sap: {num_train: 200, num_test: 100}}}\n"),
    "balancing": (
        "study: balancing\nseeds: [0]\nmethods: {names: [ew, mgda, rlw, pcgrad, dwa], options: {rlw: {}}}\n"
        "data: {dataset: tiny, n_tasks: 3, subset: 64}\nmodel: {latent_dim: 4, head_hidden: [16]}\n"
        "train: {epochs: 2, batch_size: 16, log_every: 2}\nmeasures: {every: 1, last: 4}\n"),
}


@dataclass
class Ported:
    config: Any
    result: Any
    store: Path


@pytest.fixture(scope="session")
def ported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Ported]:
    out = {}
    for study, text in PORT_CONFIGS.items():
        folder = tmp_path_factory.mktemp(study)
        (folder / "c.yaml").write_text(text)
        cfg = load_study_config(folder / "c.yaml", [f"store={folder / 's.sqlite'}"])
        out[study] = Ported(cfg, run_study(cfg, backend="serial", threads=1, display=False), folder / "s.sqlite")
    return out


class _Dom(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.announced: list[str] = []
        self.ids: dict[str, str] = {}
        self.images: list[str | None] = []
        self.checked = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("data-announced"):
            self.announced.append(str(a["data-announced"]))
        if a.get("id"):
            self.ids[str(a["id"])] = tag
        if tag == "img":
            self.images.append(a.get("data-decoded"))
        if tag == "body" and a.get("data-checked") == "1":
            self.checked = True


CHECK = ("<script>window.addEventListener('load', () => { for (const img of document.images) "
         "img.setAttribute('data-decoded', img.complete && img.naturalWidth > 0 ? 'yes' : 'no'); "
         "document.body.setAttribute('data-checked', '1'); });</script>")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is not installed; `.ci/run` installs it (apt-get install -y chromium)")
    return path


def browser_check(report: Path, tmp: Path) -> _Dom:
    """Returns what chromium (headless) shows of a report: announced ids, element ids, decoded flags of images."""
    copy = tmp / "checked.html"
    copy.write_text(report.read_text(encoding="utf-8").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
                           copy.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    return dom


def screenshot(report: Path, png: Path, tmp: Path, height: int = 4000) -> None:
    """Saves a PNG of the report as chromium renders it."""
    proc = subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           f"--user-data-dir={tmp / 'profile-shot'}", f"--window-size=1280,{height}",
                           f"--screenshot={png}", report.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-2000:]


@pytest.fixture()
def browser():
    """Returns `browser_check(report_html, tmp_folder)`: the report as headless chromium shows it."""
    return browser_check
