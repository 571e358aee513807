import sys
from pathlib import Path

# The reference set-ups in _refs.py are shared by the method test files (pytest runs in importlib mode).
sys.path.insert(0, str(Path(__file__).parent))
