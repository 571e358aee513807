"""Records the pre-engine numbers of both studies on tiny configs (run on commit 10c6c2c)."""
import json, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from mtlens.studies import load_study_config, run_study
from mtlens.runs import RunStore

out = {}
tmp = Path(sys.argv[1]); tmp.mkdir(parents=True, exist_ok=True)
hs = tmp / "hs.yaml"
hs.write_text("study: hard_sharing\nseeds: [0, 1]\nvariants: [multi_head, one_head, single_task, random]\nsingle_tasks: [1]\n"
              "data: {dataset: tiny, n_tasks: 2, subset: 96}\nmodel: {latent_dim: 4, head_hidden: [16]}\n"
              "train: {epochs: 2, batch_size: 16, progress: false, log_every: 2}\n"
              "metrics: [mig, sap]\nmetrics_options: {mig: {num_train: 200}, sap: {num_train: 200, num_test: 100}}\n")
bl = tmp / "bl.yaml"
bl.write_text("study: balancing\nseeds: [0]\nmethods: [ew, mgda, rlw, pcgrad, dwa]\nmethod_options: {rlw: {}}\n"
              "data: {dataset: tiny, n_tasks: 3, subset: 64}\nmodel: {latent_dim: 4, head_hidden: [16]}\n"
              "train: {epochs: 2, batch_size: 16, progress: false, log_every: 2}\nmeasures: {every: 1, last: 4}\n")
for name, path in (("hard_sharing", hs), ("balancing", bl)):
    store_path = tmp / f"{name}.sqlite"
    cfg = load_study_config(path, [f"store={store_path}", f"report_dir={tmp / name}"])
    res = run_study(cfg)
    store = RunStore(store_path)
    runs = {}
    for r in store.list_runs():
        series = {k: v for k, v in store.series(r.id).items() if not k.startswith("time/")}
        runs[f"{r.name}"] = {"seed": r.seed, "status": r.status, "summary": r.summary, "series": series}
    out[name] = {"config": path.read_text(), "runs": runs}
print(json.dumps(out, indent=1, sort_keys=True)[:2000])
Path(sys.argv[2]).write_text(json.dumps(out, sort_keys=True))
