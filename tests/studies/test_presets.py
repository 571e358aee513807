"""Every preset the package ships loads, validates and plans its cells (a preset that drifts from its study's
config fails here, not in a user's first `mtlens reproduce`)."""

from __future__ import annotations

import pytest

from mtlens.studies import available_studies, load_study_config
from mtlens.studies import presets
from mtlens.studies.runner import plan

SHIPPED = [(study, preset) for study in available_studies() for preset in presets.names(study)]


def test_every_study_ships_quick_and_paper() -> None:
    for study in available_studies():
        assert {"quick", "paper"} <= set(presets.names(study)), study


@pytest.mark.parametrize(("study", "preset"), SHIPPED, ids=[f"{s}/{p}" for s, p in SHIPPED])
def test_a_shipped_preset_plans_its_cells(study: str, preset: str, tmp_path) -> None:
    cfg = load_study_config(f"{study}/{preset}", [f"store={tmp_path / 's.sqlite'}"])
    jobs = plan([cfg])
    assert cfg.preset == preset
    names = [job.cell.name for job in jobs]
    assert len(names) == len(set(names))
    # only a preset whose data is absent here (CelebA's official files) plans no cell
    assert jobs or (study, preset) == ("ordering", "celeba")
