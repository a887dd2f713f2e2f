# Entry points; the build itself is CMake + Ninja in $(BUILD).
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
# `make run` arguments: the embedded default specs into the embedded store until Ctrl-C.
RUN_ARGS ?=

.PHONY: deps build run check unit integration bench install clean

deps:
	./scripts/install-deps.sh

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS)

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/ebpf-agent run $(RUN_ARGS)

check: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600 -j 1

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

bench: build
	./bench/run.sh $(BUILD)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD)
