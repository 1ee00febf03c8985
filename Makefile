# lasr — two commands do everything on a fresh Debian 12 machine with Swift 6.x:
#   make demo   install what is missing, build release, transcribe audio/
#   make test   install what is missing, then the whole test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PYTHON ?= python3
SWIFT ?= swift
LASR := .build/release/lasr
# Release builds target the host CPU where it has AVX2 + FMA (as whisper.cpp's
# GGML_NATIVE does): vector code then uses 256-bit FMA, and the decoder's beam step
# its packed kernel (Sources/LasrNN/PackedWeights.swift). PORTABLE=1 builds for any
# x86-64 (or when the binary will run on another machine).
PORTABLE ?=
ifeq ($(PORTABLE),)
ifeq ($(shell uname -m),x86_64)
ifeq ($(shell grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && echo yes),yes)
RELEASE_FLAGS := -Xswiftc -target-cpu -Xswiftc haswell -Xswiftc -DLASR_AVX2
endif
endif
endif
# The AVX2 build's flags whatever PORTABLE says, for test-portable (empty without AVX2 + FMA).
AVX2_FLAGS := $(shell [ "$$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && \
  echo -Xswiftc -target-cpu -Xswiftc haswell -Xswiftc -DLASR_AVX2)
# Extra pip arguments for the venv. Where /opt/wheels (PIP_FIND_LINKS) does not hold
# torch's CPU wheel, PIP_EXTRA="--extra-index-url https://download.pytorch.org/whl/cpu"
# gets the same 200 MB build instead of PyPI's CUDA one (about 5 GB).
PIP_EXTRA ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Build dependencies: the three C libraries the design rests on.
SYSTEM_PACKAGES := pkg-config libsndfile1-dev libopus-dev libogg-dev libfftw3-dev libopenblas-dev zlib1g-dev
# What the tests and the training recipe need besides (TTS voices for synthetic speech;
# piper, the fourth engine, comes from PyPI with the venv; chromium for the server's
# page, nginx for two servers behind docs/server.md's configuration).
TEST_PACKAGES := espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
  sox librsvg2-bin chromium nginx-light

.PHONY: help demo test test-portable build deps test-deps venv swift-test python-test bench bench-serve clean fuzz

help:
	@echo "make demo    install missing system packages, build release, run lasr on audio/"
	@echo "make test    install missing packages and the training venv, run every test"
	@echo "make test-portable  the Swift suite under other OpenBLAS kernels and builds (~20 min)"
	@echo "make bench   build release and run the benchmarks (docs/benchmarks.md)"
	@echo "make fuzz    build the libFuzzer targets with ASan, run each FUZZ_SECONDS (docs/fuzzing.md)"
	@echo "make bench-serve  load lasr serve on loopback at 1, 2, 4, 8 clients (docs/benchmarks.md)"
	@echo "make train   retrain models/default (hours); make train-smoke: a few steps"

# Installs only the Debian packages that are missing; a no-op when all are there.
define apt_install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "missing packages: $$missing (on macOS: brew install libsndfile fftw openblas espeak-ng sox)"; exit 1; \
	  fi; \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing </dev/null; \
	fi
endef

deps:
	$(call apt_install,$(SYSTEM_PACKAGES))

test-deps: deps
	$(call apt_install,$(TEST_PACKAGES))

build: deps
	$(SWIFT) build -c release --product lasr $(RELEASE_FLAGS)

# Transcribes the rendered samples with models/default; without a trained model yet,
# it shows what lasr reads of them instead.
demo: build
	$(LASR) info audio/
	@if [ -f models/default/config.yaml ]; then \
	  echo "--- lasr transcribe audio/ (models/default)"; $(LASR) transcribe audio/; \
	  echo "--- what was said (audio/*.txt)"; for f in audio/*.txt; do echo "$$f: $$(cat $$f)"; done; \
	else echo "no models/default yet: make train creates it"; fi

# The training recipe's Python environment (PyTorch, sentencepiece, soundfile), pinned.
venv: $(VENV)/.installed
$(VENV)/.installed: training/requirements.txt
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || $(MAKE) --no-print-directory _apt_venv
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --no-cache-dir --upgrade pip
	$(VENV)/bin/pip install -q --no-cache-dir -r training/requirements.txt $(PIP_EXTRA)
	touch $@
.PHONY: _apt_venv
_apt_venv:
	$(call apt_install,python3-venv python3-pip)

# `make test` builds the debug configuration (assertions, @testable imports) with the
# optimizer on: the model, stream and server tests decode real audio, and unoptimized
# generic SIMD code took 8.1–8.6 s for a 4 s file that the -O build reads in 0.2–0.4 s
# (`swift test` by hand builds without it).
TEST_BUILD_FLAGS := -Xswiftc -O
swift-test: deps fuzz-seeds
	$(SWIFT) build --build-tests $(TEST_BUILD_FLAGS)
	$(SWIFT) test $(TEST_BUILD_FLAGS)

# The server tests start the lasr binary (the test build above, made here if missing).
python-test: test-deps venv
	$(SWIFT) build --product lasr $(TEST_BUILD_FLAGS)
	$(VENV)/bin/python -m pytest -q training/tests tools/tests

test: test-deps swift-test python-test train-smoke fuzz-smoke

# libFuzzer targets with AddressSanitizer (docs/fuzzing.md), each run FUZZ_SECONDS on
# its committed corpus; new inputs go to $(RUNS)/fuzz/<target>. `make test` runs each
# for 3,000 inputs from a fixed seed (seconds), as a check that they build, their
# corpora replay cleanly and the first mutations find nothing, the same on every run.
FUZZ_SECONDS ?= 60
# The audio seeds of the fuzz targets are rendered, not committed: synthetic tones in
# every container and encoding libsndfile writes (tools/make_fuzz_seeds.py).
fuzz-seeds: venv
	@[ -f Tests/Fuzz/corpus/opus/chained.opus ] || $(VENV)/bin/python tools/make_fuzz_seeds.py Tests/Fuzz/corpus
.PHONY: fuzz-seeds

fuzz: deps fuzz-seeds
	FUZZ_SECONDS=$(FUZZ_SECONDS) RUNS=$(RUNS) SWIFT=$(SWIFT) tools/fuzz.sh $(FUZZ_TARGETS)
# Swift's libFuzzer runtime ships with the Linux toolchains only.
fuzz-smoke:
	@if [ "$$(uname -s)" = Linux ]; then rm -rf /tmp/lasr-fuzz-smoke; \
	  FUZZ_RUNS=3000 $(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60 RUNS=/tmp/lasr-fuzz-smoke; \
	else echo "fuzz-smoke: skipped, -sanitize=fuzzer needs a Linux Swift toolchain"; fi
.PHONY: fuzz-smoke

# The Swift suite with OpenBLAS forced onto other CPUs' kernels (each sums in its own
# order) and in the debug build, the release build with the AVX2 path and the portable
# release build: what passes here passes on any x86-64 CPU. A combination that fails
# stops the target and names itself. About 20 minutes on 2 cores.
PORTABLE_CORETYPES ?= Haswell Sandybridge Prescott
PORTABLE_BUILD := .build-portable
# The tests import internals (@testable), which a release build allows only when asked.
TESTABLE := -Xswiftc -enable-testing
test-portable: test-deps
	$(SWIFT) build --build-tests
	$(SWIFT) build -c release --build-tests $(TESTABLE) $(AVX2_FLAGS)
	$(SWIFT) build -c release --build-tests $(TESTABLE) --scratch-path $(PORTABLE_BUILD)
	@set -e; for core in $(PORTABLE_CORETYPES); do \
	  kernel=$$(OPENBLAS_VERBOSE=2 OPENBLAS_CORETYPE=$$core .build/debug/lasr info audio/01-welcome.wav 2>&1 | sed -n 's/^Core: //p'); \
	  [ "$$kernel" = "$$core" ] || { echo "OpenBLAS did not take OPENBLAS_CORETYPE=$$core (it chose '$$kernel')"; exit 1; }; \
	  for build in debug release$(if $(AVX2_FLAGS),-avx2) release-portable; do \
	    case $$build in \
	      debug) args="" ;; \
	      release-avx2) args="-c release $(TESTABLE) $(AVX2_FLAGS)" ;; \
	      release-portable) args="-c release $(TESTABLE) --scratch-path $(PORTABLE_BUILD)" ;; \
	      release) args="-c release $(TESTABLE)" ;; \
	    esac; \
	    echo "=== OPENBLAS_CORETYPE=$$core, $$build"; \
	    OPENBLAS_CORETYPE=$$core $(SWIFT) test --skip-build $$args > $(PORTABLE_BUILD)/test-$$core-$$build.log 2>&1 \
	      || { tail -40 $(PORTABLE_BUILD)/test-$$core-$$build.log; echo "FAILED: OPENBLAS_CORETYPE=$$core, $$build"; exit 1; }; \
	    grep -E "Test run with" $(PORTABLE_BUILD)/test-$$core-$$build.log; \
	  done; \
	done
	@echo "test-portable: every combination passed ($(PORTABLE_CORETYPES) × debug, release$(if $(AVX2_FLAGS), with AVX2), portable release)"

# Every stage with models/default; without a trained model yet, the weight-independent
# stages (audio, features, encoder, decoder step) with an untrained model of the same shapes.
SPEECH_DEV ?= ../shared/speech/dev.jsonl
UNTRAINED := /tmp/lasr-untrained
bench: build
	$(LASR) bench --stage features
	$(LASR) bench --stage audio
	@if [ -f models/default/config.yaml ]; then \
	  set -e; manifest=$$([ -f $(SPEECH_DEV) ] && echo "--manifest $(SPEECH_DEV)" || echo "--files audio"); \
	  $(LASR) bench --model models/default --stage encoder; \
	  for b in 1 8 16; do $(LASR) bench --model models/default --stage decoder --beam $$b; done; \
	  $(LASR) bench --model models/default --stage transcribe $$manifest; \
	  if grep -q '^lm:' models/default/config.yaml; then \
	    echo "--- the same without the language model (--no-lm)"; \
	    $(LASR) bench --model models/default --stage transcribe $$manifest --no-lm; fi; \
	  $(LASR) bench --model models/default --stage scaling $$manifest; \
	  $(LASR) bench --model models/default --stage long $$manifest --long-seconds 3600; \
	  $(LASR) bench --model models/default --stage stream $$manifest --stream-seconds 120 --long-seconds 3600; \
	else \
	  echo "no models/default: encoder and decoder costs measured with an UNTRAINED model of the same shapes"; \
	  $(MAKE) --no-print-directory venv && $(VENV)/bin/python training/make_untrained_model.py --out $(UNTRAINED) >/dev/null; \
	  $(LASR) bench --model $(UNTRAINED) --stage encoder; \
	  for b in 1 8; do $(LASR) bench --model $(UNTRAINED) --stage decoder --beam $$b; done; \
	fi

# lasr serve under load, on loopback only: BENCH_REQUESTS uploads per concurrency
# level for models/default and WHISPER_REQUESTS for Whisper tiny.en (each level
# bounded to BENCH_SECONDS), then the same files through lasr transcribe alternating
# with 2 clients three times, and the server's memory over SOAK_SECONDS at 2
# clients. Whisper tiny.en joins when WHISPER_TINY holds it (lasr models install
# whisper-tiny.en).
WHISPER_TINY ?= models/whisper-tiny.en
BENCH_REQUESTS ?= 240
WHISPER_REQUESTS ?= 24
BENCH_SECONDS ?= 300
SOAK_SECONDS ?= 600
bench-serve: build test-deps
	@mkdir -p bench-out
	$(PYTHON) tools/bench_serve.py --model models/default --requests $(BENCH_REQUESTS) \
	  $(if $(wildcard $(WHISPER_TINY)/config.yaml),--model $(WHISPER_TINY) --requests $(WHISPER_REQUESTS)) \
	  --seconds $(BENCH_SECONDS) --soak $(SOAK_SECONDS) --json bench-out/serve.json

clean:
	rm -rf .build $(PORTABLE_BUILD)

include training/train.mk

# Regenerates the tiny random-ish models and parity fixtures under Tests/LasrTests/Fixtures
# (one per attention kind, and the smoke run's model whose encoder is a random Whisper
# layer: encoder.type whisper) from `make train-smoke` runs.
FIXTURES := Tests/LasrTests/Fixtures
test-fixtures: venv
	$(MAKE) --no-print-directory train-smoke SMOKE_DIR=/tmp/lasr-fixture-location
	$(MAKE) --no-print-directory train-smoke SMOKE_DIR=/tmp/lasr-fixture-dot SMOKE_SET="$(SMOKE_SET) decoder.attention.type=dot"
	for kind in location dot; do \
	  name=$$([ $$kind = dot ] && echo tiny-dot-model || echo tiny-model); \
	  mkdir -p $(FIXTURES)/$$name $(FIXTURES)/$$name-parity; \
	  cp /tmp/lasr-fixture-$$kind/model/{config.yaml,model.safetensors,tokens.txt} $(FIXTURES)/$$name/; \
	  cp /tmp/lasr-fixture-$$kind/fixtures/* $(FIXTURES)/$$name-parity/; \
	done
	mkdir -p $(FIXTURES)/tiny-hybrid-model $(FIXTURES)/tiny-hybrid-model-parity
	cp /tmp/lasr-fixture-location/model-hybrid/{config.yaml,model.safetensors,tokens.txt} $(FIXTURES)/tiny-hybrid-model/
	cp /tmp/lasr-fixture-location/fixtures-hybrid/* $(FIXTURES)/tiny-hybrid-model-parity/
.PHONY: test-fixtures
