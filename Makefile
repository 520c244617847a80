# evidence-qa: `make run` starts the app on the sample corpus, `make test` runs the tests.
# Both create the virtual environment .venv/ on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORPUS ?= corpus
INDEX  ?= index

.PHONY: install run index test test-fast eval train bench reliability lock clean-index

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# pip itself is pinned like every other package, so two installs resolve alike.
	$(BIN)/python -m pip install -q -c constraints.txt pip setuptools
	# torch first, at the version in constraints.txt.
	$(BIN)/python -m pip install -q -c constraints.txt torch
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

index: $(STAMP)
	$(BIN)/qa ingest $(CORPUS) --index $(INDEX)

run: index
	QA_INDEX_DIR=$(INDEX) QA_CORPUS_DIR=$(CORPUS) $(BIN)/streamlit run app.py

# Lint and type-check first: they take seconds and catch mistakes the tests may not reach.
test: $(STAMP)
	$(BIN)/python -m pip check
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -m "not model and not browser"

eval: index
	$(BIN)/qa eval tests/data/sample_questions.jsonl --index $(INDEX) --compare

# Refit the answer scorer from the feature table in tests/data/ (qa train --extract rebuilds the table).
train: $(STAMP)
	$(BIN)/qa train

bench: $(STAMP)
	$(BIN)/python bench/bench.py

reliability: $(STAMP)
	$(BIN)/python tools/reliability.py

lock: $(STAMP)
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --all --exclude-editable | sed 's/+cpu$$//'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean-index:
	rm -rf $(INDEX)
