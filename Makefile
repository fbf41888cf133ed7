# repurpose: `make run` runs the pipeline on the built-in sample, `make test` runs the tests.
# Both create (or reuse) the virtualenv .venv/ from the pinned constraints.txt first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(abspath $(BIN)):$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1

.PHONY: install run test lint dag repurpose10k clean-venv

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -c "import repurpose, stages, flows" && $(BIN)/repurpose --help >/dev/null
	touch $(STAMP)

install: $(STAMP)  ## create/refresh .venv from constraints.txt

run: install  ## the main job: dvc repro over the dataset chosen in params.yaml (sample by default)
	$(BIN)/dvc repro

test: install  ## the test suite
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

dag: install
	$(BIN)/dvc dag

# Bring the real Repurpose-10K split files under DVC (URL or local path); then set
# prepare.dataset: repurpose10k in params.yaml.
SPLITS_SRC ?= ../shared/data/repurpose10k
repurpose10k: install
	@mkdir -p data/datasets
	src='$(SPLITS_SRC)'; case "$$src" in *://*) ;; *) src=$$(realpath -m --relative-to=data/datasets "$$src");; esac; \
	$(BIN)/dvc import-url "$$src" data/datasets/repurpose10k

clean-venv:
	rm -rf $(VENV)
