import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# _cli.py is shared by the test folders (pytest runs in importlib mode)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    np.random.seed(0)
