# The front door: make (build), make test (every test, Release and ASan+UBSan), make demo.
# The Release build (build/) turns warnings into errors (GC_WERROR, see CMakeLists.txt).
JOBS ?= $(shell nproc)
MAKEFLAGS += --no-print-directory
CMAKE ?= cmake

.PHONY: all build build-asan deps model test test-release test-asan fuzz demo clean

all: build

deps:
	@bash scripts/install-deps.sh

model: deps
	@bash scripts/get-model.sh

build: deps
	@$(CMAKE) -S . -B build -DCMAKE_BUILD_TYPE=Release -DGC_WERROR=ON >/dev/null
	@$(CMAKE) --build build -j $(JOBS)

build-asan: deps
	@$(CMAKE) -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DGC_SANITIZE=ON >/dev/null
	@$(CMAKE) --build build-asan -j $(JOBS)

test-release: build model
	cd build && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan model
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 ctest --output-on-failure -j $(JOBS)

test: test-release test-asan

fuzz: deps
	@$(CMAKE) -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGC_FUZZ=ON >/dev/null
	@$(CMAKE) --build build-fuzz -j $(JOBS)

demo: build model
	@bash scripts/demo.sh

clean:
	rm -rf build build-asan build-fuzz
