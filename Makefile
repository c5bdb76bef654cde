# The two commands a new user needs: `make build` and `make test` (see README.md).
CARGO ?= cargo
BIN := target/release/nomad-pledge-driver

.PHONY: build test lint fmt bench fuzz vmtest clean

build:
	$(CARGO) build --release --locked
	@echo "built $(BIN)"

# Unit, sandbox, plugin and end-to-end tests, then the VM suite. Tests that need root or a
# kernel feature this machine lacks skip with a printed reason, or fail when the feature is
# listed in NOMAD_PLEDGE_TEST_REQUIRE (as .ci/run does; README "Testing").
test: lint
	$(CARGO) test --locked --all-targets -- --test-threads=2
	$(MAKE) --no-print-directory vmtest

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

# Benchmarks (not part of `make test`): run as root for the task rows; BENCH_SCALE=full adds the
# 1,000-task row and longer windows. Prints a markdown table and writes target/bench-results.md.
bench:
	$(CARGO) bench --locked --bench driver

# Fuzzing (not part of `make test`, which runs a 2,000-input smoke of the same targets): each
# parser of untrusted bytes gets FUZZ_CASES inputs; FUZZ_SEED explores other inputs (README
# "Fuzzing"). A debug build on purpose: integer overflow checks are on.
FUZZ_CASES ?= 1000000
fuzz:
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --locked --bin nomad-pledge-driver fuzz:: -- --test-threads=2

# Pure cgroup-v2 VM suite (e2e/vm/README.md): boots Debian's kernel once under QEMU (TCG, no
# network) with our debug binary in a busybox initramfs. Root only; installs its apt packages
# and downloads the kernel into target/vm on first use. Pass options with VMTEST_ARGS, e.g.
# `make vmtest VMTEST_ARGS="--only oom --verbose"`.
vmtest:
	$(CARGO) build --locked
	bash e2e/vm/run.sh $(VMTEST_ARGS)

clean:
	$(CARGO) clean
