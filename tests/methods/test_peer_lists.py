"""`mtlens methods` lists every method of LibMTL 1.1.5 and TorchJD 0.18: the names are read from the installed
packages (their `__all__`) and each must map to a registered mtlens method, or be one of the named exceptions
(base classes, with the reason), and appear in the command's output."""

from __future__ import annotations

import pytest

from mtlens.cli import main
from mtlens.methods import available_methods
from mtlens.methods.catalog import method_rows
from mtlens.methods.peers import LIBMTL, NOT_METHODS, TORCHJD_AGGREGATION, TORCHJD_SCALARIZATION

from _refs import stub_torchvision


def _exported() -> dict[str, list[str]]:
    stub_torchvision()
    libmtl = pytest.importorskip("LibMTL.weighting")
    aggregation = pytest.importorskip("torchjd.aggregation")
    scalarization = pytest.importorskip("torchjd.scalarization")
    return {"LibMTL": list(libmtl.__all__), "TorchJD aggregation": list(aggregation.__all__),
            "TorchJD scalarization": list(scalarization.__all__)}


TABLES = {"LibMTL": LIBMTL, "TorchJD aggregation": TORCHJD_AGGREGATION, "TorchJD scalarization": TORCHJD_SCALARIZATION}


def test_every_peer_method_is_an_mtlens_method_or_a_named_exception() -> None:
    registered = set(available_methods())
    for library, names in _exported().items():
        table = TABLES[library]
        missing = [n for n in names if n not in table and n not in NOT_METHODS]
        assert not missing, f"{library} exports {missing}: map them in mtlens.methods.peers or say why not"
        stale = [n for n in table if n not in names]
        assert not stale, f"mtlens.methods.peers maps {stale}, which {library} does not export"
        unknown = {n: table[n] for n in names if n in table and table[n] not in registered}
        assert not unknown, f"{library}: {unknown} map to unregistered methods"
    assert all(len(reason) > 20 for reason in NOT_METHODS.values())
    # the exceptions are base classes, not methods: each is exported by at least one package
    exported = {n for names in _exported().values() for n in names}
    assert set(NOT_METHODS) <= exported


def test_mtlens_methods_shows_kind_levels_task_count_options_and_peers(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["methods"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    rows = {r.name: r for r in method_rows()}
    assert set(rows) == set(available_methods())
    for name, row in rows.items():
        assert name in out and row.n_tasks in ("fixed", "any") and row.levels
    upgrad, moco, auto = rows["upgrad"], rows["moco"], rows["auto_lambda"]
    assert upgrad.kind == "gradient aggregation" and upgrad.levels == ("param", "feature") and upgrad.n_tasks == "any"
    assert "gramian=False" in upgrad.options and "TorchJD UPGrad" in upgrad.peers
    assert moco.levels == ("param",) and moco.n_tasks == "fixed"
    assert "needs a validation batch" in auto.kind
    listed = {p for r in rows.values() for p in r.peers}
    for library, names in _exported().items():
        prefix = {"LibMTL": "LibMTL ", "TorchJD aggregation": "TorchJD ", "TorchJD scalarization": "TorchJD scalarization."}
        for n in names:
            if n in NOT_METHODS or (n.endswith("Weighting") and n.removesuffix("Weighting") in names):
                continue  # base classes; a Weighting is listed under its Aggregator
            assert prefix[library] + n in listed, f"{library} {n} is not shown by `mtlens methods`"
