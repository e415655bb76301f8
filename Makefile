# Thin wrapper over CMake. The two commands a newcomer needs: `make run` and `make test`.
BUILD ?= build
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=RelWithDebInfo
JOBS ?= $(shell nproc)

.PHONY: all build deps run demo test test-unit sanitize fuzz faults bench-ingest bench-footprint bench-detect bench-memory clean check images

all: build

deps:
	@scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)

build: $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# Starts the coordinator (with its private PostgreSQL) and one agent for this machine,
# all state under var/, in the foreground until Ctrl-C.
run: deps build
	scripts/run.sh

# A first look in under a minute: the same stack plus an nginx "application", then the
# application-down runbook played out (crash, incident, recovery, resolve), narrated. Temporary
# state and free ports: var/ and a running `make run` are untouched.
demo: deps build
	scripts/demo.sh

# Everything that runs in under ten minutes: unit and integration tests.
test: deps build
	cd $(BUILD) && ctest --output-on-failure -j 2

test-unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

# The suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVIGIL_SANITIZE=ON
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure

# Every fuzz target (tests/fuzz/fuzz_*.c) under libFuzzer with ASan + UBSan, FUZZ_SECONDS each,
# in build-fuzz/ (clang); FUZZ_TARGETS="a b" runs only those. make test replays their corpora
# with the normal build.
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DVIGIL_FUZZ=ON
	cmake --build build-fuzz -j $(JOBS) --target fuzz-targets
	BUILD_DIR=build-fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_TARGETS="$(FUZZ_TARGETS)" scripts/fuzz.sh

# The long fault suite (tests/faults/faults.sh, as root: network namespaces): a 60 s partition,
# a full spool, a lossy link, coordinator kills, 1,000 agents reconnecting. make test runs the
# short version.
faults: deps build
	VIGIL_BUILD=$(abspath $(BUILD)) tests/faults/faults.sh

# Static checks on the machine: cppcheck and clang-tidy over the project's sources.
# variableScope is suppressed: vg_log's level check (log.h) makes every buffer formatted for a
# log line look as if it could live inside the macro's if.
check: build
	cppcheck --enable=warning,style,performance --std=c11 --quiet --error-exitcode=1 --inline-suppr \
	    --suppress=missingIncludeSystem --suppress=variableScope -I common -I agent -I agent/collect -I agent/probe \
	    -I coordinator -I coordinator/store -I coordinator/admin -I coordinator/ingest \
	    -I coordinator/incidents -I coordinator/paging -I coordinator/evidence -I coordinator/http \
	    -I coordinator/status -I coordinator/remediate \
	    common agent coordinator cli
	clang-tidy -p $(BUILD) --quiet $$(git ls-files 'common/*.c' 'agent/*.c' 'coordinator/*.c' 'cli/*.c')

# The images of deploy/docker/ with buildah over a debootstrap'd Debian 12 base, no registry and
# no Docker engine needed (root; minutes: each image compiles Vigil in its build stage).
images: deps
	scripts/images.sh

bench-ingest: deps build
	tests/bench/ingest.sh

bench-footprint: deps build
	tests/bench/footprint.sh

bench-detect: deps build
	tests/bench/detect.sh

bench-memory: deps build
	VIGIL_BUILD=$(abspath $(BUILD)) tests/bench/memory.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz
