"""The filters study's report (seed 001), from the stored trials alone (their params, summaries and notes).

Tables: Table V (clustering success of filters vs fixed noise, the seed's rates beside ours, Wilson 95 %
intervals), the beta sweep (success and accuracy per layout and beta), Table IV (MultiMNIST accuracy with
the noise sampled and at its mean, the seed's beside ours). Figures: Fig. 2's distance and log-variance
heatmaps, Fig. 4's distance matrices per beta, accuracy and success vs beta, success rate per row.
A failed trial (non-finite loss) counts as an unsuccessful clustering; trials not run are said, not counted.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtlens.measures.task_similarity import SuccessRate, success_rate
from mtlens.plots.report import Report, mean_std

MODEL_NAMES = {"filters": "Ours", "fixed_noise": "Fixed noise", "no_noise": "No noise", "mtvib": "MTVIB"}


@dataclass
class Row:
    """The trials of one setting (a cell's params without its seed): finished, failed and not-run ones."""

    params: dict[str, Any]
    runs: list[Any] = field(default_factory=list)

    @property
    def finished(self) -> list[Any]:
        return [r for r in self.runs if r.status == "finished"]

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.runs)

    @property
    def not_run(self) -> int:
        return sum(r.status not in ("finished", "failed") for r in self.runs)

    def values(self, key: str) -> list[float]:
        return [float(r.summary[key]) for r in self.finished if key in r.summary]

    def rate(self) -> SuccessRate | None:
        """Returns the success rate over finished and failed trials (a failed one is unsuccessful), else None."""
        outcomes = [bool(r.summary.get("success", 0.0) == 1.0) for r in self.finished] + [False] * self.failed
        return success_rate(outcomes) if outcomes else None

    def first(self) -> Any | None:
        """Returns the finished trial with the smallest seed (the one the heatmaps show)."""
        done = sorted(self.finished, key=lambda r: r.seed)
        return done[0] if done else None


def rows_by_part(runs: Sequence[Any]) -> dict[str, list[Row]]:
    """Returns part -> its rows in planning order (one per setting), each holding its trials."""
    rows: dict[str, dict[str, Row]] = {}
    for r in runs:
        params = dict(r.params)
        key = json.dumps(params, sort_keys=True)
        rows.setdefault(params["part"], {}).setdefault(key, Row(params)).runs.append(r)
    return {part: list(by_key.values()) for part, by_key in rows.items()}


def _pct(rate: SuccessRate | None) -> tuple[str, str, str]:
    if rate is None:
        return "—", "—", "—"
    return (f"{rate.successes}/{rate.trials}", f"{100 * rate.rate:.0f}",
            f"{100 * rate.low:.0f}–{100 * rate.high:.0f}")


def _acc(row: Row, task: str | None, mode: str) -> str:
    """Returns 'mean ± std' (%) of a task's test accuracy over finished trials; task None: the mean over tasks."""
    key = f"test/mean_acc/{mode}" if task is None else f"test/{task}/acc/{mode}"
    return mean_std([100 * v for v in row.values(key)], 1)


def _beta_names(beta: float | None) -> list[str]:
    if beta is None:
        return ["-"]
    sci = f"{beta:.0e}".replace("e-0", "e-").replace("e+00", "")
    return [f"{beta:g}", sci if beta != 0 else "0"]


def published_value(rep: Report, table: str, model: str, beta: float | None, column: int = 0) -> str:
    """Returns the seed's printed value for (model, beta) in `table`, '—' when it printed none."""
    rows = rep.published.get("tables", {}).get(table, {}).get("rows", {})
    for name in _beta_names(beta):
        key = f"{MODEL_NAMES[model]}, β = {name}"
        if key in rows:
            return str(rows[key][column])
    return "—"


def _trials_note(rows: Sequence[Row]) -> str:
    missing = sum(r.not_run for r in rows)
    failed = sum(r.failed for r in rows)
    return (f" {failed} trial(s) failed (non-finite loss) and count as unsuccessful." if failed else "") + (
        f" {missing} trial(s) not run yet are left out." if missing else "")


def _setting_text(p: dict[str, Any]) -> str:
    second = f" + {p['variance_epochs'] if p.get('variance_epochs') is not None else p['epochs']} (stage 2)" \
        if p["variant"] == "fixed_noise" else ""
    size = "all" if p.get("n") is None else str(p["n"])
    return f"{p['epochs']} epochs{second}, Adam lr {p['lr']:g}, batch {p['batch_size']}, {size} training images"


def table5(rep: Report, rows: list[Row]) -> None:
    """Adds Table V (ours beside the seed's) and the seed's table as printed."""
    p = rows[0].params
    trials = max(len(r.runs) for r in rows)
    rep.section("Table V: clustering success, information filters vs fixed noise")
    rep.text(f"Layout {p['layout_name']} (tasks in pairs sharing digits, a fresh digit assignment per trial), "
             f"d = {p['latent_dim']}, {trials} trials per row; {_setting_text(p)}. Success: the largest L1 distance "
             "(eq. 11) between tasks of a pair is below the smallest distance between tasks of different pairs. "
             "Rates with the Wilson 95 % interval." + _trials_note(rows))
    body = []
    for row in rows:
        q = row.params
        k_n, pct, ci = _pct(row.rate())
        body.append([MODEL_NAMES[q["variant"]], f"{q['beta']:g}", k_n, pct, ci,
                     published_value(rep, "table_5", q["variant"], q["beta"]), str(row.failed),
                     mean_std(row.values("margin"), 2), _acc(row, None, "sample"), _acc(row, None, "mean")])
    rep.table("Clustering success per model and β (Table V layout)",
              ["model", "β", "successes", "ours (%)", "95 % CI (%)", "seed 001 (%)", "failed", "margin",
               "test acc. sampled (%)", "test acc. mean (%)"], body,
              note="seed 001: 50 trials of 25 epochs on MNIST (Table V). Margin: smallest between-pair minus largest "
                   "within-pair distance (mean ± std over finished trials).")
    rep.published_table("table_5")


def sweep(rep: Report, rows: list[Row]) -> None:
    """Adds the beta sweep table (Fig. 4 data for every layout)."""
    p = rows[0].params
    rep.section("β sweep: clustering success and accuracy per layout (Figs. 2-4)")
    rep.text(f"{max(len(r.runs) for r in rows)} trials per row; {_setting_text(p)}. Layouts 4x3, 4x4 and 6x4 draw "
             "their digits per trial; fig2_left keeps the groups of Fig. 2 (left). 6x4 succeeds when the two "
             "three-task chains separate." + _trials_note(rows))
    body = []
    for row in rows:
        q = row.params
        k_n, pct, ci = _pct(row.rate())
        within, between = mean_std(row.values("mean_in"), 2), mean_std(row.values("mean_out"), 2)
        body.append([q["layout_name"], str(q["latent_dim"]), f"{q['beta']:g}", k_n, pct, ci, str(row.failed),
                     within, between, _acc(row, None, "sample"), _acc(row, None, "mean")])
    rep.table("Clustering success and accuracy per layout and β",
              ["layout", "d", "β", "successes", "rate (%)", "95 % CI (%)", "failed", "mean distance within",
               "mean distance between", "test acc. sampled (%)", "test acc. mean (%)"], body)


def table4(rep: Report, rows: list[Row]) -> None:
    """Adds Table IV (both evaluation modes, the seed's beside ours) and the seed's table as printed."""
    p = rows[0].params
    noted = next((r.first().notes.get("tasks") for r in rows if r.first() is not None), None)
    t1, t2 = (list(noted) if noted and len(noted) >= 2 else ["has_0", "has_1"])[:2]
    rep.section("Table IV: MultiMNIST accuracy")
    rep.text(f"MultiMNIST (preset ijcnn2022: two max-merged digits on 28x28); Digit 1 = {t1}, Digit 2 = {t2}: "
             "whether a 0 / a 1 is among the two digits, the tasks of the seed's code (predicting 'absent' scores "
             f"about 80 % / 78 % on MNIST pairs). {max(len(r.runs) for r in rows)} trial(s) per row; "
             f"{_setting_text(p)}, {p.get('n_test') or 'one per test image'} test overlays. Sampled: one noise draw "
             "per test image (the seed's protocol); mean: W = Z. No noise has no noise to sample; MTVIB is "
             "evaluated at its mean code." + _trials_note(rows))
    body = []
    for row in rows:
        q = row.params
        sampled = q["variant"] == "filters"
        body.append([MODEL_NAMES[q["variant"]], "-" if q["beta"] is None else f"{q['beta']:g}",
                     _acc(row, t1, "sample") if sampled else "—", _acc(row, t2, "sample") if sampled else "—",
                     _acc(row, t1, "mean"), _acc(row, t2, "mean"),
                     published_value(rep, "table_4", q["variant"], q["beta"], 0),
                     published_value(rep, "table_4", q["variant"], q["beta"], 1), str(len(row.finished))])
    rep.table("Accuracy (%) per model and β (Table IV layout)",
              ["model", "β", "Digit 1 sampled", "Digit 2 sampled", "Digit 1 mean", "Digit 2 mean",
               "seed 001 Digit 1", "seed 001 Digit 2", "trials"], body,
              note="Mean ± std over trials. seed 001: one run per row on MNIST, 100 epochs, lr 1e-4.")
    rep.published_table("table_4")


def fill_report(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    """Adds the filters study's tables and figures to `rep`, from the trials' stored values only."""
    from mtlens.plots import filters_figures as figs

    parts = rows_by_part(runs)
    sources = sorted({str(r.notes.get("data_source")) for r in runs if r.notes.get("data_source")})
    if any("stand-in" in s for s in sources):
        rep.text("Data: no MNIST files were found, so every trial ran on the stand-in (scikit-learn's 8x8 digits "
                 "upsampled into MNIST's 28x28 layout, 1540 training and 257 test images): the numbers show the "
                 "layout and direction of the seed's effects, not its values. Pass --data-dir (or set "
                 "$MTLENS_DATA) with the MNIST IDX files for the real thing.")
    elif sources:
        rep.text(f"Data: {'; '.join(sources)}.")
    if parts.get("table5"):
        table5(rep, parts["table5"])
    if parts.get("sweep"):
        sweep(rep, parts["sweep"])
    if parts.get("table4"):
        table4(rep, parts["table4"])
    grouped = parts.get("table5", []) + parts.get("sweep", [])
    if parts.get("sweep"):
        shown = figs.fig2_rows(parts["sweep"])
        if shown:
            rep.figure("Task distances and noise log-variances (Fig. 2 layout)", figs.fig2(shown),
                       "Top: L1 distance (eq. 11) between the tasks' noise log-variances; bottom: the log-variances "
                       "per task (rows, labelled by their digit groups) and latent dimension. One trial (the "
                       "smallest seed) per layout at the β closest to 0.1.")
        first = [r for r in parts["sweep"] if r.params["layout_name"] == parts["sweep"][0].params["layout_name"]]
        if any(r.first() is not None for r in first):
            rep.figure(f"Task distances per β, layout {first[0].params['layout_name']} (Fig. 4 layout)",
                       figs.fig4(first), "One trial (the smallest seed) per β; titles: success rate over trials and "
                                         "mean test accuracy (noise sampled).")
        rep.figure("Accuracy and clustering success vs β", figs.versus_beta(parts["sweep"]),
                   "Left: mean test accuracy over trials (solid: noise sampled; dashed: W = Z). Right: success rate "
                   "with its Wilson 95 % interval.")
    if grouped:
        rep.figure("Clustering success rate per row with 95 % CI", figs.rates(grouped, rep),
                   "Wilson score intervals; crosses: seed 001 Table V. Failed trials count as unsuccessful.")


def nearest(values: Sequence[float], target: float) -> float:
    """Returns the value closest to `target` (the first of ties)."""
    return min(values, key=lambda v: (abs(math.log10(v) - math.log10(target)) if v > 0 else math.inf, -v))


def log_var_matrix(summary: dict[str, float]) -> np.ndarray:
    """Returns the [T, d] noise log-variances of a trial's summary (keys noise_log_var/<task>/<dim>)."""
    keys = [k.split("/") for k in summary if k.startswith("noise_log_var/")]
    t = 1 + max(int(k[1]) for k in keys)
    d = 1 + max(int(k[2]) for k in keys)
    return np.array([[summary[f"noise_log_var/{j}/{i}"] for i in range(d)] for j in range(t)])


def distance_matrix(summary: dict[str, float]) -> np.ndarray:
    """Returns the symmetric [T, T] L1 distances of a trial's summary (keys distance/<i>/<j>, i < j)."""
    t = log_var_matrix(summary).shape[0]
    m = np.zeros((t, t))
    for i in range(t):
        for j in range(i + 1, t):
            m[i, j] = m[j, i] = summary[f"distance/{i}/{j}"]
    return m
