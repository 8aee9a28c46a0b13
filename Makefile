# Every install and build step of the project lives here, so a fresh machine needs only `make run` / `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CACHE   ?= $(HOME)/.cache/sentimiento
VENV    ?= .venv
PY      := $(VENV)/bin/python
# cargo-lambda needs the venv's python (it finds zig through it) first on PATH.
TOOLS   := PATH="$(abspath $(VENV))/bin:$$PATH" SAM_CLI_TELEMETRY=0

# ONNX Runtime 1.31 matches ort 2.0.0-rc.15 (feature api-31).
ORT_VERSION := 1.31.1
ORT_SHA256  := fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
ORT_LIB     := lib/libonnxruntime.so

# The model the function serves. Until the default model lands (`make model`, issue 3), the
# tiny fixture model stands in: it answers, but it is a test double, not a sentiment model.
MODEL_DIR ?= tests/fixtures/tiny
PORT      ?= 8080
BIN       := target/release/sentimiento
LAMBDA_BIN := target/lambda/sentimiento/bootstrap
RUN_ENV   := MODEL_DIR=$(MODEL_DIR) ORT_DYLIB_PATH=$(abspath $(ORT_LIB))

.PHONY: help venv ort model fixtures golden preprocess-data build run watch invoke test lambda sam-build deploy \
	bench bench-preprocess clean

help:
	@echo "make run     serve the function locally on the default model (http://127.0.0.1:$(PORT))"
	@echo "make test    run every test (unit, handler, cargo lambda end-to-end, sam validate)"
	@echo "other targets: ort model fixtures build watch invoke lambda sam-build deploy bench clean"

$(VENV)/.done: scripts/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r scripts/requirements.txt
	touch $@
venv: $(VENV)/.done

# libonnxruntime.so from the PyPI wheel, cached outside the repo and checked by SHA-256.
$(ORT_LIB): $(VENV)/.done
	mkdir -p $(CACHE)/wheels lib
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
	  --python-version 3.11 -d $(CACHE)/wheels onnxruntime==$(ORT_VERSION)
	$(PY) -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
	  $(CACHE)/wheels/onnxruntime-$(ORT_VERSION)-*manylinux_2_28_x86_64*.whl \
	  onnxruntime/capi/libonnxruntime.so.$(ORT_VERSION) > $@.tmp
	echo "$(ORT_SHA256)  $@.tmp" | sha256sum --check --quiet \
	  || { echo "error: $@ does not match the pinned SHA-256" >&2; rm -f $@.tmp; exit 1; }
	mv $@.tmp $@
ort: $(ORT_LIB)

# pysentimiento itself, for the golden data and the preprocessing benchmark: --no-deps, since
# preprocessing.py needs only re and emoji (the package's __init__ would pull in torch).
PYS_VENV := $(CACHE)/pysentimiento-0.7.3-venv
PYS_PY   := $(PYS_VENV)/bin/python
EVOMSA        := $(CACHE)/sdists/evomsa-2.0.14.tar.gz
EVOMSA_SHA256 := 948955df920578c668d1c19cf7051f2034a1c968ced6275284d9082b8c6cd8c4

$(PYS_VENV)/.done:
	python3 -m venv $(PYS_VENV)
	$(PYS_PY) -m pip install --quiet --no-deps pysentimiento==0.7.3 emoji==2.10.1
	touch $@

$(EVOMSA): $(VENV)/.done
	mkdir -p $(dir $@)
	$(PY) -m pip download --quiet --no-deps --no-binary=:all: -d $(dir $@) evomsa==2.0.14
	echo "$(EVOMSA_SHA256)  $@" | sha256sum --check --quiet \
	  || { echo "error: $@ does not match the pinned SHA-256" >&2; rm -f $@; exit 1; }

# Regenerates the committed golden file and the embedded preprocessing data.
golden: $(PYS_VENV)/.done $(EVOMSA)
	$(PYS_PY) tests/golden/make_golden.py $(EVOMSA)

preprocess-data: $(PYS_VENV)/.done
	$(PYS_PY) scripts/gen_preprocess_data.py

# The test fixtures are committed (a few KB); this rebuilds them from their script.
fixtures: $(VENV)/.done
	$(PY) tests/fixtures/make_fixtures.py

model:
	@echo "the default model is not built yet (issue 3); MODEL_DIR=$(MODEL_DIR) is served meanwhile"

build: $(BIN)
$(BIN): Cargo.toml Cargo.lock $(shell find src -type f)
	cargo build --release --locked

# The main job: the function as a local HTTP server on the default model.
run: $(ORT_LIB) model $(BIN)
	@echo "serving $(MODEL_DIR) on http://127.0.0.1:$(PORT)  (try: curl -s localhost:$(PORT)/predict -H 'content-type: application/json' -d '{\"text\": \"me encanta\"}')"
	$(RUN_ENV) PORT=$(PORT) $(BIN) serve

# The Lambda emulator on 127.0.0.1:9000; `make invoke` (another terminal) sends it every sample event.
watch: $(ORT_LIB) model $(VENV)/.done
	$(TOOLS) $(RUN_ENV) cargo lambda watch

invoke: $(VENV)/.done
	for event in events/*.json; do echo "== $$event"; $(TOOLS) cargo lambda invoke sentimiento --data-file $$event; echo; done

test: $(ORT_LIB) $(VENV)/.done
	cargo test --locked
	$(TOOLS) $(PY) tests/e2e_lambda.py
	$(TOOLS) sam validate --lint
	$(MAKE) --no-print-directory sam-build
	$(PY) tests/sam_artifact.py

lambda: $(VENV)/.done
	$(TOOLS) cargo lambda build --release --locked

# `sam build` calls build-SentimientoFunction (BuildMethod: makefile, in source: see samconfig.toml).
sam-build: $(ORT_LIB) model $(VENV)/.done
	$(TOOLS) sam build

build-SentimientoFunction: lambda $(ORT_LIB)
	cp $(LAMBDA_BIN) $(ORT_LIB) $(ARTIFACTS_DIR)/
	mkdir -p $(ARTIFACTS_DIR)/model
	cp $(addprefix $(MODEL_DIR)/,model.onnx tokenizer.json config.json pipeline.json) $(ARTIFACTS_DIR)/model/

deploy: sam-build
	$(TOOLS) sam deploy --guided

bench: $(ORT_LIB) $(BIN) bench-preprocess
	$(RUN_ENV) $(PY) bench/rss.py $(BIN)

bench-preprocess: $(BIN) $(PYS_VENV)/.done
	$(PYS_PY) bench/preprocess.py $(BIN) tests/golden/preprocess.jsonl
	cargo bench --locked --bench preprocess

clean:
	cargo clean
	rm -rf .aws-sam lib
