# `make demo` and `make test` set everything up on a fresh machine (virtual environment in .venv) and run.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mtlens-installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

# torch is installed as `torch==2.13.0` only when missing: on these machines that pin resolves to a local
# CPU build, while any other torch requirement pulls several GB of CUDA wheels. An installed torch is never
# upgraded (pyproject asks torch>=2.2, which it satisfies). The ray and umap extras are installed so that the
# Ray backend's tests and the decoding study's presets (UMAP embeddings) run in CI.
$(STAMP): pyproject.toml tests/requirements-nodeps.txt Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test,ray,umap]"
	$(PY) -m pip install -q --no-deps -r tests/requirements-nodeps.txt
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mtlens data preview dsprites --out previews/dsprites.png
	$(VENV)/bin/mtlens data preview shapes3d --out previews/shapes3d.png
	$(VENV)/bin/mtlens data preview mpi3d_toy --out previews/mpi3d_toy.png
	$(VENV)/bin/mtlens reproduce hard-sharing --preset quick

# One worker per core, each on one thread (two workers on two threads each oversubscribe a 2-core runner);
# loadfile keeps a test file's shared fixtures (a tiny study run) on one worker.
test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "not slow" -n 2 --dist loadfile

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) previews .pytest_cache
