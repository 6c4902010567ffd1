# The two commands a user needs: `make demo` (the main job) and `make test`.
# Both do all set-up on a fresh Debian machine with Python 3.11: a virtualenv in .venv with restem
# installed editable, and whatever engines the tests need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,sandbox,harness,bench,ray,serve,trainers
PYTEST_ARGS ?=

.PHONY: setup sandbox-ready demo test test-fast lint format clean lock

setup: $(VENV)/.installed

# constraints.txt pins every package to the version the README's figures were measured with
# (library users get pyproject's ranges); `make lock` rewrites it from this .venv.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]' -c constraints.txt
	touch $@

# Local version labels (+cpu) are dropped: the same pin then accepts a CUDA build of torch.
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i '^restem[ =]' \
		| sed -E 's/^([^ ]+==[^+ ]+)\+[^ ]*$$/\1/' > constraints.txt.tmp
	{ echo "# make setup installs these versions (the ones the README's figures were measured"; \
	  echo "# with); rewritten from .venv by make lock. Library users: pyproject.toml's ranges."; \
	  cat constraints.txt.tmp; } > constraints.txt
	rm constraints.txt.tmp

# A Docker engine running (the user's, or on Debian as root: docker.io installed, dockerd started)
# and the sandbox image built offline; both skipped when already so. See docs/sandbox.md.
sandbox-ready: setup
	bash scripts/sandbox-ready.sh $(BIN)

# The main job: the embedded ReST-EM demo (tiny model built here, no downloads; a second run
# resumes and reprints the table). The verifier on the shipped sample answers comes first.
demo: setup sandbox-ready
	$(BIN)/restem verify math --input examples/math_answers.jsonl --output out/math_verdicts.jsonl
	$(BIN)/restem train --preset demo

test: setup sandbox-ready
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache .hypothesis
