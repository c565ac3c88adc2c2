# Entry points: `make run` (stamp and inspect the samples on the embedded default) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
KEYS := keys
OUT := out
CLI := $(BIN)/provenance

.PHONY: run demo test lint format bench bench-readme clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(KEYS)/signer.key: | $(INSTALLED)
	$(CLI) keys init --keys-dir $(KEYS) --org "Example Newsroom"

# The main job: the service on the embedded default (SQLite + blobs in var/, dev keys in keys/),
# with the samples loaded through the same ingest code as the API (idempotent).
run: $(INSTALLED) $(KEYS)/signer.key
	$(CLI) serve --samples samples --data-dir var --keys-dir $(KEYS)

# The command-line walk-through of the library: stamp and inspect the samples into out/.
demo: $(INSTALLED) $(KEYS)/signer.key
	@mkdir -p $(OUT)
	$(CLI) stamp samples/ai-render.jpg -o $(OUT)/ai-render.jpg --source ai_generated --title "Generated illustration" --force
	$(CLI) stamp samples/camera-photo.jpg -o $(OUT)/camera-photo.jpg --source camera --title "AI generated?" --force
	$(CLI) stamp samples/edited-photo.jpg -o $(OUT)/edited-photo.jpg --source ai_edited --title "Edited photo" --force
	$(CLI) stamp $(OUT)/ai-render.jpg -o $(OUT)/ai-render-published.jpg --source ai_generated --force
	$(CLI) stamp-article samples/articles/ai-weather.json -o $(OUT)/articles --force
	$(CLI) stamp-article samples/articles/ai-weather.v2.json -o $(OUT)/articles --force \
		--previous $(OUT)/articles/2026-11-28-weather-storm-warning.v1.txt
	$(CLI) stamp-article samples/articles/markets-zh.json -o $(OUT)/articles --force --lang zh-Hans
	$(CLI) stamp-article samples/articles/council-human.json -o $(OUT)/articles --force
	@echo
	$(CLI) inspect $(OUT)/ai-render-published.jpg --lang zh-Hans
	$(CLI) inspect $(OUT)/articles/2026-11-28-weather-storm-warning.v2.txt \
		--sidecar $(OUT)/articles/2026-11-28-weather-storm-warning.v2.c2pa --lang zh-Hans
	$(CLI) inspect samples/articles/markets-zh.json --sidecar $(OUT)/articles/2026-11-28-markets-close-zh.v1.c2pa --lang zh-Hans

# The independent C2PA verifier of tests/test_independent_verifier.py (c2pa-web from npm, exact pins in the lock;
# no install scripts run).
VERIFIER := tests/verifier/node_modules/.package-lock.json
$(VERIFIER): tests/verifier/package.json tests/verifier/package-lock.json
	scripts/install-system-deps
	cd tests/verifier && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

test: $(INSTALLED) $(VERIFIER)
	scripts/install-system-deps
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check provenance service tests bench samples
	$(BIN)/ruff format --check provenance service tests bench samples
	$(BIN)/mypy

format: $(INSTALLED)
	$(BIN)/ruff format provenance service tests bench samples
	$(BIN)/ruff check --fix provenance service tests bench samples

# Every benchmark, one table (bench/README.md, "One table"); bench-readme also rewrites README's Performance block.
bench: $(INSTALLED)
	$(BIN)/python bench/bench_all.py

bench-readme: $(INSTALLED)
	$(BIN)/python bench/bench_all.py --readme README.md

clean:
	rm -rf $(VENV) $(OUT) var .pytest_cache .mypy_cache .ruff_cache
