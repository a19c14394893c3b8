# fercli — every target installs what it needs first (`make install` is a no-op once done).
#
#   make demo            the main job on embedded synthetic data
#   make test            the whole test suite
#   make chapter3|4|5    reproduce a thesis chapter (DATA=... for a real dataset)
#   make bench           the speed benchmarks in bench/
#
# A GPU user installs a CUDA torch first and skips the CPU pin:  make install TORCH=

PYTHON   ?= python3
VENV     ?= .venv
BIN      := $(VENV)/bin
TORCH    ?= torch==2.13.0
FERCLI   := $(BIN)/fercli
OUT      ?= out
STAMP    := $(VENV)/.fercli-installed

.PHONY: install demo test bench clean chapter3 chapter4 chapter5

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	# Pin the CPU torch wheel before resolving the rest (an unpinned torch is a CUDA build of several GB).
	$(if $(TORCH),$(BIN)/python -m pip install --quiet "$(TORCH)")
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -c "import fercli.faces as f; f.landmark_model_path()"
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

demo: install
	mkdir -p $(OUT)
	$(FERCLI) synth --subjects 6 --clips-per-class 2 --size 320x240 --seed 0 -o $(OUT)/demo-synth.h5
	$(FERCLI) info $(OUT)/demo-synth.h5

bench: install
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(OUT)
