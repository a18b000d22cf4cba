# convai-bridge: `make demo` and `make test` work on a fresh machine (they install what they need).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
APT_PACKAGES := espeak-ng sox mono-mcs mono-runtime libmono-system-core4.0-cil libzmq3-dev cppzmq-dev \
                libmsgpack-cxx-dev g++ cmake make iproute2 util-linux \
                clang-16 libc++-16-dev libc++abi-16-dev

.PHONY: help deps apt venv pipecat-venv demo test test-python test-unity test-unreal test-unreal-libzmq lint bench vectors clean

help:
	@echo "make demo   - emulator + daemon + two NPCs talking (no network, no key)"
	@echo "make test   - everything CI runs: lint, vectors, Python, Unity core, Unreal core"
	@echo "make bench  - benchmarks: prints a table, writes bench.json"

deps: apt venv

# System packages: installed only when missing (needs root or sudo).
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

# A stock pipecat bot for the live tests (tests/live_transport/pipecat_bot.py), in its own venv so its
# pins never meet ours; test-only.
PIPECAT_VENV := .venv-pipecat
PIPECAT_STAMP := $(PIPECAT_VENV)/.installed-pipecat-ai-1.14.0
pipecat-venv: $(PIPECAT_STAMP)

$(PIPECAT_STAMP):
	@test -x $(PIPECAT_VENV)/bin/python || $(PY) -m venv $(PIPECAT_VENV)
	$(PIPECAT_VENV)/bin/pip install -q --upgrade pip
	$(PIPECAT_VENV)/bin/pip install -q 'pipecat-ai[webrtc,runner]==1.14.0'
	@touch $@

demo: deps
	$(BIN)/convai-bridge demo

lint: venv
	$(BIN)/ruff check bridge convai_emulator bridge_loadtest tests bench
	$(BIN)/python -m bridge.wire.vectors --check
	$(BIN)/python -m bridge.wire.doc --check

test-python: deps pipecat-venv
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unity: deps
	bash unity_sample/ci/test.sh

test-unreal: deps
	bash unreal_sample/ci/test.sh

# Static libzmq from Debian's source with clang 16 + libc++ (Scripts/build_libzmq.py), then the core's
# tests linked against it. Not part of `make test`: compiling libzmq takes minutes on two cores.
# Needs a deb-src entry for apt-get source (or CVB_LIBZMQ_SOURCE=<libzmq tarball or folder>).
test-unreal-libzmq: deps
	bash unreal_sample/ci/test_libzmq.sh

test: deps lint test-python test-unity test-unreal

bench: deps
	$(BIN)/python -m bench

vectors: venv
	$(BIN)/python -m bridge.wire.vectors
	$(BIN)/python -m bridge.wire.doc

clean:
	rm -rf $(VENV) $(PIPECAT_VENV) unreal_sample/build unity_sample/build build/unity_sample bench.json
