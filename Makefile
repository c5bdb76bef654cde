# The two commands a new user needs: `make build` and `make test` (see README.md); `make help`
# lists every target.
CARGO ?= cargo
BIN := target/release/nomad-pledge-driver
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
DIST := target/dist
DIST_NAME := nomad-pledge-driver_$(VERSION)_linux_amd64
# Every file in the tarball gets this mtime: the last commit's time (0 outside a git checkout);
# set SOURCE_DATE_EPOCH to override.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)

.PHONY: build test test-host lint fmt bench fuzz vmtest dist help clean

build: ## build target/release/nomad-pledge-driver
	$(CARGO) build --release --locked
	@echo "built $(BIN)"

# Unit, sandbox, plugin and end-to-end tests, then the VM suite. Tests that need root or a
# kernel feature this machine lacks skip with a printed reason, or fail when the feature is
# listed in NOMAD_PLEDGE_TEST_REQUIRE (as .ci/run does; README "Testing").
test: test-host ## the whole suite: lint, every cargo test, then the VM suite (root; apt + kernel download on first run)
	$(MAKE) --no-print-directory vmtest

test-host: lint ## everything but the VM suite: lint and every cargo test on this machine
	$(CARGO) test --locked --all-targets -- --test-threads=2

lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

# Benchmarks (not part of `make test`): run as root for the task rows; BENCH_SCALE=full adds the
# 1,000-task row and longer windows. Prints a markdown table and writes target/bench-results.md.
bench: ## benchmarks (root; not part of make test), table in target/bench-results.md
	$(CARGO) bench --locked --bench driver

# Fuzzing (not part of `make test`, which runs a 2,000-input smoke of the same targets): each
# parser of untrusted bytes gets FUZZ_CASES inputs; FUZZ_SEED explores other inputs (README
# "Fuzzing"). A debug build on purpose: integer overflow checks are on.
FUZZ_CASES ?= 1000000
fuzz: ## fuzz the parsers of untrusted bytes (FUZZ_CASES inputs each, default 10^6; not part of make test)
	FUZZ_CASES=$(FUZZ_CASES) $(CARGO) test --locked --lib fuzz:: -- --test-threads=2

# Pure cgroup-v2 VM suite (e2e/vm/README.md): boots Debian's kernel once under QEMU (TCG, no
# network) with our debug binary in a busybox initramfs. Root only; installs its apt packages
# and downloads the kernel into target/vm on first use. Pass options with VMTEST_ARGS, e.g.
# `make vmtest VMTEST_ARGS="--only oom --verbose"`.
vmtest: ## the cgroup-v2 VM suite under QEMU (root; installs qemu-system-x86 busybox-static cpio gcc, downloads a kernel)
	$(CARGO) build --locked
	bash e2e/vm/run.sh $(VMTEST_ARGS)

# A release tarball and its checksum, reproducible: the same commit and toolchain give the same
# bytes in any checkout directory. The binary is built in its own target dir with the checkout
# and cargo-home paths remapped (generated code and panic locations would embed them); the
# archive has sorted names, every mtime SOURCE_DATE_EPOCH, owner/group 0, fixed modes, gzip -n.
DIST_TARGET := target/dist-build
CARGO_HOME_DIR := $(or $(CARGO_HOME),$(HOME)/.cargo)
dist: ## release tarball target/dist/nomad-pledge-driver_VERSION_linux_amd64.tar.gz + SHA256SUMS
	RUSTFLAGS="--remap-path-prefix=$(CURDIR)=/build --remap-path-prefix=$(CARGO_HOME_DIR)=/cargo" \
		$(CARGO) build --release --locked --target-dir $(DIST_TARGET) --bin nomad-pledge-driver
	rm -rf $(DIST)/$(DIST_NAME) $(DIST)/$(DIST_NAME).tar.gz $(DIST)/SHA256SUMS
	mkdir -p $(DIST)/$(DIST_NAME)/hack
	cp $(DIST_TARGET)/release/nomad-pledge-driver LICENSE README.md TROUBLESHOOT.md $(DIST)/$(DIST_NAME)/
	cp hack/*.hcl hack/README.md $(DIST)/$(DIST_NAME)/hack/
	tar --sort=name --format=gnu --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 \
		--numeric-owner --mode='u=rwX,go=rX' -C $(DIST) -cf - $(DIST_NAME) \
		| gzip -n -9 > $(DIST)/$(DIST_NAME).tar.gz
	cd $(DIST) && sha256sum $(DIST_NAME).tar.gz > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

help: ## list the targets
	@echo "make targets (default: build):"
	@sed -n 's/^\([a-z-]*\):.*## \(.*\)/  \1\t\2/p' $(firstword $(MAKEFILE_LIST)) | expand -t 14

clean: ## remove target/
	$(CARGO) clean
