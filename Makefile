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

MODEL_DIR ?= model/dist
PORT      ?= 8080
BIN       := target/release/sentimiento

.PHONY: help venv ort model fixture build run serve watch invoke test lambda sam-build deploy bench clean

help:
	@echo "make run     serve the function locally on the default model (http://127.0.0.1:$(PORT))"
	@echo "make test    run every test (unit, handler, cargo lambda end-to-end, sam validate)"
	@echo "other targets: ort model fixture build watch invoke lambda sam-build deploy bench clean"

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
	unzip -p $(CACHE)/wheels/onnxruntime-$(ORT_VERSION)-*manylinux_2_28_x86_64*.whl \
	  onnxruntime/capi/libonnxruntime.so.$(ORT_VERSION) > $@.tmp
	echo "$(ORT_SHA256)  $@.tmp" | sha256sum --check --quiet \
	  || { echo "error: $@ does not match the pinned SHA-256" >&2; rm -f $@.tmp; exit 1; }
	mv $@.tmp $@
ort: $(ORT_LIB)
