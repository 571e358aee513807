"""The ordering study's report (seed 003): per experiment the seed's claim, our tables and figures, a verdict.

A summary table first puts each claim beside what our cells show; then one section per requested experiment
(random-task fitting Fig. 2, digit pairs Fig. 4, tabular Fig. 5, Omniglot Fig. 6, CelebA Fig. 7), each with the
published table where the seed prints numbers (Figs. 6c, 7c). An experiment whose data is absent gets a line
saying it was skipped and why. Everything comes from the stored cells (plots/ordering_analysis.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mtlens.plots import ordering as figs
from mtlens.plots.ordering_analysis import (LABELS, VARIANTS, Fitting, Group, error_curves, fitting, group, mean,
                                            runs_of, scale_trace, soft_run, task_names, trend)
from mtlens.plots.report import Report, mean_std

TITLES = {"fitting": "Random-task fitting (§3.2, Fig. 2)", "digit_pairs": "Digit-pair tasks (§4.1, Fig. 4)",
          "tabular": "Tabular tasks (§4.2, Fig. 5)", "omniglot": "Omniglot alphabets (§4.3, Fig. 6)",
          "celeba": "CelebA attributes (§4.4, Fig. 7)"}
CELEBA_ROWS = {"parallel": "Parallel Order", "parallel_landmarks": "Parallel Order + Landmarks", "soft": "Soft Order",
               "soft_landmarks": "Soft Order + Landmarks", "soft_identity": "Soft Order + Identity",
               "soft_landmarks_identity": "Soft Order + Landmarks + Identity"}


def _pct(values: Sequence[float]) -> str:
    return mean_std([100 * v for v in values], 2)


def _claim(rep: Report, key: str) -> str:
    entry = rep.published.get("claims", {}).get(key)
    return f"{entry['text']} ({entry['where']})" if entry else ""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _source(runs: Sequence[Any]) -> str:
    return "; ".join(dict.fromkeys(str(r.notes["data_source"]) for r in runs if r.notes.get("data_source"))) or "unknown"


# ---------------------------------------------------------------------------------------------------- verdicts
def _fitting_verdict(fit: Fitting) -> tuple[str, str]:
    parts, holds = [], []
    for core, matched in fit.matched.items():
        adv = [a for _, a in fit.advantage.get(core, [])]
        if not matched:
            continue
        gap = mean([perm - par for _, par, perm in matched])
        parts.append(f"{core}: permuted(2n) − parallel(n) = {gap:+.3f} (mean over n), permuted(n) − parallel(n) = "
                     f"{mean(adv):+.3f}")
        holds.append(abs(gap) <= 0.05 and mean(adv) > 0)
    if not parts:
        return "no n with both n and 2n run", "not shown"
    # tolerance 0.05: the seed reads the match off Fig. 2's curves; our per-seed spread is of that order
    return "; ".join(parts), "holds" if all(holds) else "does not hold"


def _ratio_text(g: Group) -> tuple[str, bool | None]:
    parts, better = [], []
    for v in ("permuted", "soft"):
        source, name = (g.ratio, "error") if g.ratio.get(v) and trend(g.ratio[v]) else (g.loss_ratio, "test loss")
        t = trend(source.get(v, {}))
        if t is None:
            continue
        k0, r0, k1, r1 = t
        parts.append(f"{v}/parallel {name}: {r0:.2f} ({k0} task{'s' if k0 != 1 else ''}) → {r1:.2f} ({k1} tasks)")
        better.append(r1 < r0 and r1 < 1.0)
    if not parts:
        return "needs parallel and permuted or soft at two or more task counts", None
    return "; ".join(parts), all(better)


def _lowest(g: Group, setting: Any) -> str | None:
    means = {v: mean(g.error[v][setting]) for v in g.error if g.error[v].get(setting)}
    return min(means, key=means.get) if means else None


def _group_verdict(g: Group, claimed: str) -> tuple[str, str]:
    if not g.settings:
        return "no finished cells", "not shown"
    lowest = {s: _lowest(g, s) for s in g.settings}
    text = ", ".join(f"{'' if s is None else f'{s}: '}{LABELS[v]}" for s, v in lowest.items() if v)
    return f"lowest mean test error — {text}", "holds" if all(v == claimed for v in lowest.values()) else "does not hold"


# ---------------------------------------------------------------------------------------------------- sections
def _fitting_section(cfg: Any, runs: Sequence[Any], rep: Report, fit: Fitting) -> None:
    rep.text(f"Seed 003: {_claim(rep, 'fitting')}")
    rep.text("Two tasks of n random binary labels on uniform inputs, two shared layers (eq. 4) and a shared output; "
             "single task: one task of 2n samples, the reference for parallel ordering with n per task. Full-batch "
             "Adam; training accuracy (mean ± std over seeds).")
    for core, by_variant in fit.acc.items():
        c = getattr(cfg.fitting, core)
        ns = sorted({n for by_n in by_variant.values() for n in by_n})
        rows = []
        for n in ns:
            par, perm = by_variant.get("parallel", {}), by_variant.get("permuted", {})
            matched = f"{mean(perm[2 * n]) - mean(par[n]):+.3f}" if n in par and 2 * n in perm else "—"
            rows.append([n, mean_std(par.get(n, [])), mean_std(perm.get(n, [])),
                         mean_std(by_variant.get("single_task", {}).get(n, [])), matched])
        rep.table(f"Training accuracy, {core} core (m = {c.width}, {c.steps} steps)",
                  ["n per task", "parallel", "permuted", "single task (2n samples)", "permuted(2n) − parallel(n)"], rows)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(fit.acc), figsize=(5 * len(fit.acc), 3.4), squeeze=False)
    for ax, (core, by_variant) in zip(axes[0], fit.acc.items()):
        named = {("single task (2n)" if v == "single_task" else v): by_n for v, by_n in by_variant.items()}
        figs.fitting_axes(ax, named, f"{core} core (m = {getattr(cfg.fitting, core).width})")
    fig.tight_layout()
    rep.figure("Fitting two random tasks (Fig. 2)", fig, "Mean over seeds; band: ± std.")


def _group_error_table(rep: Report, g: Group, title: str, setting_name: str) -> None:
    variants = [v for v in VARIANTS if v in g.error]
    rows = [[s] + [_pct(g.error[v].get(s, [])) for v in variants] for s in g.settings]
    rep.table(title, [setting_name] + [LABELS[v] for v in variants], rows, note="Test error %, mean ± std over seeds.")


def _digit_pairs_section(cfg: Any, runs: Sequence[Any], rep: Report, g: Group) -> None:
    mine = runs_of(runs, "digit_pairs")
    rep.text(f"Seed 003: {_claim(rep, 'digit_pairs')}")
    section, model = cfg.digit_pairs, cfg.digit_pairs.model
    rep.text(f"Data: {_source(mine)}; pairs drawn per seed (one task set per seed, shared by its variants); "
             f"{'all' if section.n_train is None else section.n_train} training images per task"
             f"{f', Gaussian pixel noise σ = {section.noise:g}' if section.noise else ''}. Model: {model.encoder} "
             f"{model.width if isinstance(model.width, int) else model.width[0]}-unit encoders, {model.depth} core "
             f"layers, dropout {model.dropout}, {model.iterations} iterations of {model.batch_size} samples per task "
             "(the seed: 64-unit encoders and layers, 20K iterations of 64 on MNIST, §4.1 and App. A.1).")
    _group_error_table(rep, g, "Digit pairs: mean test error by number of tasks", "tasks")
    rows = []
    for k in g.settings:
        rows.append([k] + [mean_std(g.ratio.get(v, {}).get(k, []), 2) for v in ("permuted", "soft")]
                    + [mean_std(g.loss_ratio.get(v, {}).get(k, []), 2) for v in ("permuted", "soft")])
    note = "Per seed: the variant's value / parallel ordering's value on the same tasks; mean ± std over seeds."
    if g.zero_parallel:
        note += f" {g.zero_parallel} cell(s) had a parallel-ordering error of 0 and give no error ratio."
    rep.table("Relative to parallel ordering (Fig. 4a): below 1 is better",
              ["tasks", "permuted / parallel error", "soft / parallel error", "permuted / parallel loss",
               "soft / parallel loss"], rows, note=note)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (source, name) in zip(axes, ((g.ratio, "error"), (g.loss_ratio, "test loss"))):
        figs.relative_axes(ax, {v: source.get(v, {}) for v in ("permuted", "soft")},
                           ylabel=f"{name} / parallel-ordering {name}")
    fig.tight_layout()
    rep.figure("Digit pairs: test error and loss relative to parallel ordering (Fig. 4a)", fig,
               "Mean over seeds; bars: ± std. No error ratio where parallel ordering made no error.")
    run = soft_run(runs, "digit_pairs", {"n_tasks": 2})
    trace = scale_trace(run) if run is not None else None
    if run is not None and trace and len(trace["step"]) > 1:
        rep.figure(f"Digit pairs: soft-ordering scales by iteration, {len(task_names(run))} tasks, seed {run.seed} "
                   "(Fig. 4b-c)", figs.scale_trace_figure(trace),
                   "Left: mean distance between the tasks' scale vectors at each depth; right: mean largest scale "
                   "(1 = a hard ordering).")
    _layer_usage(rep, run, "Digit pairs", " (Fig. 4d)")


def _layer_usage(rep: Report, run: Any, setting: str, figure_ref: str = "") -> None:
    """Adds the figure of a soft-ordering run's learned layer usage per task (nothing without such a run)."""
    if run is not None:
        rep.figure(f"{setting}: learned layer usage per task, seed {run.seed}{figure_ref}",
                   figs.layer_paths_figure(run.notes["scales"], task_names(run)),
                   "Shading: the scale of each layer at each depth; red: the strongest path.")


def _tabular_section(cfg: Any, runs: Sequence[Any], rep: Report, g: Group) -> None:
    mine = runs_of(runs, "tabular")
    rep.text(f"Seed 003: {_claim(rep, 'tabular')}")
    names = task_names(mine[0]) if mine else []
    missing = (mine[0].notes.get("data_info", {}).get("missing", []) if mine else [])
    model = cfg.tabular.model
    rep.text(f"Tables present ({len(names)} of the seed's 10): {', '.join(names) or 'none'}"
             + (f"; absent (no CSV in the data folder): {', '.join(m.removesuffix('.csv') for m in missing)}" if missing else "")
             + f". Model: learned {model.width if isinstance(model.width, int) else model.width[0]}-unit encoders, "
             f"{model.depth} core layers, dropout {model.dropout}, {model.iterations} iterations of {model.batch_size} "
             "samples per task.")
    variants = [v for v in VARIANTS if v in g.error]
    per_task = {v: {t: [r.summary[f"test/{t}/error"] for r in mine if r.params["variant"] == v
                        and f"test/{t}/error" in r.summary] for t in names} for v in variants}
    rows = [[LABELS[v], _pct(g.error[v].get(None, []))] + [_pct(per_task[v][t]) for t in names] for v in variants]
    rep.table("Tabular: final test error per variant", ["variant", "mean over tasks"] + names, rows,
              note="Test error %, mean ± std over seeds.")
    curves = error_curves(runs, "tabular")
    if curves:
        rep.figure("Tabular: mean test error over tasks by iteration (Fig. 5b)",
                   figs.error_curves_figure({LABELS[v]: c for v, c in curves.items()}), "Mean over seeds; band: min-max.")
    _layer_usage(rep, soft_run(runs, "tabular"), "Tabular")


def _omniglot_section(cfg: Any, runs: Sequence[Any], rep: Report, g: Group) -> None:
    mine = runs_of(runs, "omniglot")
    rep.text(f"Seed 003: {_claim(rep, 'omniglot')}")
    rep.text(f"Data: {_source(mine)}.")
    variants = [v for v in VARIANTS if v in g.error]
    fractions = sorted({s[1] for s in g.settings})
    for f in fractions:
        rows = [[k] + [_pct(g.error[v].get((k, f), [])) for v in variants] for k, ff in g.settings if ff == f]
        rep.table(f"Omniglot: test error by number of alphabets, {f:.0%} test split (Fig. 6a)",
                  ["tasks"] + [LABELS[v] for v in variants], rows, note="Test error %, mean ± std over seeds.")
    largest = max(k for k, _ in g.settings)
    rows = [[f"{LABELS[v]} (ours)"] + [_pct(g.error[v].get((largest, f), [])) for f in fractions] for v in variants]
    rep.table(f"Omniglot: test error with {largest} alphabets by test split (Fig. 6c layout)",
              ["method"] + [f"{f:.0%} test split" for f in fractions], rows,
              note="Test error %, mean ± std over seeds." + ("" if largest == 50 else " The seed's table uses all 50."))
    rep.published_table("fig_6c")
    curves = {v: {k: g.error[v][(k, fractions[0])] for k, f in g.settings if f == fractions[0] and (k, f) in g.error[v]}
              for v in variants}
    fig = figs.relative_error_figure({LABELS[v]: {k: [100 * e for e in es] for k, es in c.items()} for v, c in curves.items()},
                                     ylabel="test error %", reference=None)
    rep.figure(f"Omniglot: test error by number of alphabets, {fractions[0]:.0%} test split (Fig. 6a)", fig,
               "Mean over seeds; bars: ± std.")
    run = soft_run(runs, "omniglot", {"n_tasks": largest})
    if run is not None:
        rep.figure(f"Omniglot: layer usage by depth across {len(task_names(run))} alphabets, seed {run.seed} (Fig. 6b)",
                   figs.layer_usage_figure(run.notes["scales"]), "Median over tasks; band: 10th-90th percentile.")


def _celeba_section(cfg: Any, runs: Sequence[Any], rep: Report) -> None:
    mine = runs_of(runs, "celeba")
    rep.text(f"Seed 003: {_claim(rep, 'celeba')}")
    info = mine[0].notes.get("data_info", {}) if mine else {}
    rep.text(f"Data: {_source(mine)}; split sizes {info.get('sizes', '?')}; images {info.get('image_size', '?')} px; "
             f"trunk {cfg.celeba.backbone} from {info.get('weights', '?')}. Training: Adam for {cfg.train.epochs} "
             f"epoch(s) of batch {cfg.train.batch_size} (the seed then fine-tunes with RMSProp at lr 1e-5: not done here).")
    errors = {v: [100 * r.summary["test/attribute_error"] for r in mine if r.params["variant"] == v] for v in CELEBA_ROWS}
    entry = rep.published.get("tables", {}).get("fig_7c", {})
    published = {k: v[0] for k, v in entry.get("rows", {}).items()}
    rows = [[CELEBA_ROWS[v], mean_std(errors[v], 2) if errors[v] else "not run", published.get(CELEBA_ROWS[v], "—")]
            for v in CELEBA_ROWS if v in cfg.celeba.variants or errors[v]]
    rep.table("CelebA: attribute test error (Fig. 7c layout)", ["method", "ours (test error %)", "seed 003 (test error %)"],
              rows, note="Ours: mean ± std over seeds; the landmark task is trained but not counted (App. A.4).")
    rep.published_table("fig_7c")
    for variant, name in (("soft", "Fig. 7a"), ("soft_identity", "Fig. 7b")):
        run = soft_run(runs, "celeba", variant=variant)
        if run is not None:
            rep.figure(f"CelebA: layer usage by depth across the attributes, {LABELS[variant]} ({name})",
                       figs.layer_usage_figure(run.notes["scales"]), "Median over tasks; band: 10th-90th percentile.")


def _celeba_verdict(runs: Sequence[Any]) -> tuple[str, str]:
    errs = {v: mean([100 * r.summary["test/attribute_error"] for r in runs_of(runs, "celeba") if r.params["variant"] == v])
            for v in CELEBA_ROWS}
    shown = {v: e for v, e in errs.items() if np.isfinite(e)}
    if "soft" not in shown or "parallel" not in shown:
        return "needs soft and parallel cells", "not shown"
    text = ", ".join(f"{LABELS[v]} {e:.2f}" for v, e in shown.items())
    return f"test error %: {text}", "holds" if shown["soft"] < shown["parallel"] else "does not hold"


# ---------------------------------------------------------------------------------------------------- the report
def fill_report(cfg: Any, runs: Sequence[Any], rep: Report, missing: dict[str, str]) -> None:
    """Adds the ordering study's summary, sections, tables and figures to `rep`, from the stored cells only."""
    fit = fitting(runs)
    groups = {"digit_pairs": group(runs, "digit_pairs"), "tabular": group(runs, "tabular", ()),
              "omniglot": group(runs, "omniglot", ("n_tasks", "test_fraction"))}
    verdicts: dict[str, Callable[[], tuple[str, str]]] = {
        "fitting": lambda: _fitting_verdict(fit),
        "digit_pairs": lambda: _digit_verdict(groups["digit_pairs"]),
        "tabular": lambda: _group_verdict(groups["tabular"], "soft"),
        "omniglot": lambda: _group_verdict(groups["omniglot"], "soft"),
        "celeba": lambda: _celeba_verdict(runs),
    }
    rep.text(f"Experiments: {', '.join(cfg.experiments)}; variants {', '.join(cfg.variants)}; seeds "
             f"{', '.join(map(str, cfg.seeds))}; task losses combined by {cfg.method.name} (the seed sums them).")
    rows = []
    for experiment in cfg.experiments:
        if experiment in missing:
            rows.append([TITLES[experiment], _claim(rep, experiment), "skipped: data absent", "not run"])
        else:
            ours, verdict = verdicts[experiment]()
            rows.append([TITLES[experiment], _claim(rep, experiment), ours, verdict])
    rep.table("The seed's claims and ours", ["experiment", "seed 003 says", "ours", "verdict"], rows,
              note="Verdicts apply this run's settings (the preset's sizes and data), not the paper's.")
    sections = {"fitting": lambda: _fitting_section(cfg, runs, rep, fit),
                "digit_pairs": lambda: _digit_pairs_section(cfg, runs, rep, groups["digit_pairs"]),
                "tabular": lambda: _tabular_section(cfg, runs, rep, groups["tabular"]),
                "omniglot": lambda: _omniglot_section(cfg, runs, rep, groups["omniglot"]),
                "celeba": lambda: _celeba_section(cfg, runs, rep)}
    for experiment in cfg.experiments:
        rep.section(TITLES[experiment])
        if experiment in missing:
            rep.text(f"Skipped: {missing[experiment]}")
        elif not runs_of(runs, experiment):
            rep.text("No cell of this experiment finished (see the failed cells below).")
        else:
            sections[experiment]()


def _digit_verdict(g: Group) -> tuple[str, str]:
    text, better = _ratio_text(g)
    return text, {None: "not shown", True: "holds", False: "does not hold"}[better]
