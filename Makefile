# The two commands of the README, and the setup they share. Works on a fresh machine:
# python3 (3.10+) is the only thing it needs; torch 2.13.0 is pinned here (a CPU build
# where one is on disk), since an unpinned torch pulls a multi-GB CUDA build.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
STAMP := $(VENV)/.splinescope-installed
# OpenMP threads sleep instead of spinning while they wait: on a busy 2-core machine spinning
# made small training steps ~85x slower (measured); on an idle one it costs nothing.
export OMP_WAIT_POLICY ?= passive

.PHONY: setup demo test bench browser soak

$(STAMP): pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e ".[test,tensorboard,mlflow,ray,lightning,transformers]"
	# torchattacks (test oracle for PGD/FGSM) declares torchvision, which breaks torch 2.13.0 CPU:
	# install it without dependencies (it needs only torch, numpy and scipy).
	$(PIP) install --no-deps torchattacks==3.5.1
	touch $(STAMP)

setup: $(STAMP)

# Headless Chromium for the report's browser test (Debian's package; no browser downloads).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "chromium unavailable: the browser test will skip"; }

# The paper's MNIST figure in ~8 minutes on 2 cores (measured: 474 s of training with probes): 3e4 of lc-phases-mnist's 1e5 steps show
# LC's first descent, ascent and second descent and the late rise of PGD accuracy.
demo: setup
	$(VENV)/bin/splinescope run lc-phases-mnist --steps 30000 --runs-dir runs
	$(VENV)/bin/splinescope report lc-phases-mnist --runs-dir runs -o runs/lc-phases-mnist-report.html

test: setup browser
	$(PY) -m pytest -q

# The long reliability runs (every signal, 8 writers for 60 s, a 2,000-step run, many
# generated configs); `make test` runs their fast subset.
soak: setup browser
	$(PY) -m pytest -q -m soak tests/reliability
	$(PY) benchmarks/bench_store.py

bench: setup
	$(PY) benchmarks/bench_local_complexity.py
