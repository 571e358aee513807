"""Writes reference outputs that need packages the tests do not install (cvxpy and its solvers).

TorchJD's Nash-MTL and CAGrad solve their sub-problems with cvxpy (ECOS / Clarabel); cvxpy is no dependency
of mtlens, so their outputs on fixed Jacobians are stored here once. Regenerate with
    pip install --target /tmp/cvx --no-deps cvxpy==1.9.3 ecos==2.0.14 clarabel==0.11.1 scs==3.3.1 \
        osqp==1.1.3 qdldl==0.1.9.post1
    PYTHONPATH=/tmp/cvx .venv/bin/python tests/methods/reference/make_fixtures.py
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import torch
from torchjd.aggregation import CAGrad, NashMTL


def main() -> None:
    gen = torch.Generator().manual_seed(2024)
    out: dict = {"torchjd": version("torchjd"), "cvxpy": version("cvxpy"), "ecos": version("ecos"),
           "clarabel": version("clarabel"), "nash_mtl": [], "cagrad": []}
    for n_tasks, dim in [(2, 5), (3, 7), (4, 9), (5, 12)]:
        # three steps of one stateful Nash-MTL: warm starts carry over as in training
        nash = NashMTL(n_tasks=n_tasks, max_norm=0.0)
        steps = []
        for _ in range(3):
            jac = torch.randn(n_tasks, dim, generator=gen, dtype=torch.float64) + 0.5
            steps.append({"jacobian": jac.tolist(), "weights": nash.weighting(jac).tolist()})
        out["nash_mtl"].append(steps)
        jac = torch.randn(n_tasks, dim, generator=gen, dtype=torch.float64)
        for c in (0.2, 0.5):
            agg = CAGrad(c=c)
            out["cagrad"].append({"c": c, "jacobian": jac.tolist(), "direction": agg(jac).tolist()})
    path = Path(__file__).with_name("torchjd_cvxpy.json")
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
