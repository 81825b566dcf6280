# Thin wrapper over CMake; these are the README's commands.
#   make run    install deps, build, start the scheduler in local mode with an example app
#   make test   install deps, build, run unit tests (CTest) and integration tests (pytest)
#   make bench  build and run the benchmarks under tools/bench
BUILD ?= build
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)
PYTHON ?= /usr/bin/python3

.PHONY: all deps build run test unit integration bench format format-check clean

all: build

deps:
	@tools/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

run: build
	tools/run-local.sh $(BUILD)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

integration: build
	PACER_BUILD_DIR=$(abspath $(BUILD)) $(PYTHON) -m pytest -q integration-tests $(PYTEST_ARGS)

test: unit integration

bench: build
	tools/bench/run-all.sh $(BUILD)

format:
	git ls-files '*.c' '*.h' | xargs clang-format-14 -i

format-check:
	@git ls-files '*.c' '*.h' | xargs clang-format-14 --dry-run --Werror

clean:
	rm -rf $(BUILD)
