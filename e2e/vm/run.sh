#!/usr/bin/env bash
# e2e/vm/run.sh: the VM test harness (`make vmtest`).
#
# Boots Debian's stock amd64 kernel once under QEMU (TCG, no KVM, no network) with a busybox
# initramfs whose /sys/fs/cgroup is a pure cgroup v2 hierarchy with every controller enabled,
# runs e2e/vm/suite.sh in it and reports one line per test, then "N passed, N failed".
#
# usage: e2e/vm/run.sh [options]
#   --binary PATH     our binary to put in the guest (default target/debug/nomad-pledge-driver)
#   --only REGEX      run only the tests whose name (without test_) matches REGEX (grep -E)
#   --timeout SECS    kill the VM after SECS seconds (default 300; env VMTEST_TIMEOUT)
#   --test-timeout S  per-test limit inside the guest (default 120)
#   --add HOST[:GUEST] put an extra file into the guest (with its shared libraries)
#   --append ARGS     extra kernel command-line arguments
#   --mem MIB / --smp N   guest size (default 1024 / 2)
#   --verbose         stream the whole guest console instead of only the results
#   --keep            keep the work directory (initramfs tree, console log)
#   --no-install      never run apt-get (fail if a package or the kernel is missing)
#
# Exit status: 0 when every selected test passed or skipped (and when the suite cannot run here,
# e.g. not root: "SKIP: reason"); 1 when a test failed, the guest did not finish the suite (boot
# failure, panic, timeout) or no test ran, or when NOMAD_PLEDGE_TEST_REQUIRE lists `vm` and the
# suite could not run or a test skipped; 2 on usage errors.
#
# First run on a fresh Debian 12 machine (root): installs qemu-system-x86, busybox-static,
# cpio, gcc and libc6-dev (for the static vmprobe helper) with apt, downloads the kernel
# package linux-image-amd64 depends on (override: VMTEST_KERNEL_PKG=linux-image-<ver>-amd64,
# or VMTEST_KERNEL=/path/to/vmlinuz) and keeps its vmlinuz in target/vm/kernel/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/e2e/vm"
CACHE="${VMTEST_CACHE:-$ROOT/target/vm}"

BINARY="$ROOT/target/debug/nomad-pledge-driver"
ONLY=""
TIMEOUT="${VMTEST_TIMEOUT:-300}"
TEST_TIMEOUT=120
ADDS=()
APPEND=""
MEM=1024
SMP=2
VERBOSE=0
KEEP=0
INSTALL=1
[ "${VMTEST_SKIP_APT:-0}" = 1 ] && INSTALL=0

log() { echo "vmtest: $*" >&2; }
die() { echo "vmtest: error: $*" >&2; exit 1; }
# NOMAD_PLEDGE_TEST_REQUIRE (README "Testing") lists what this machine must have; with `vm` in it
# the suite must run, and run without skips: what would be a skip is a failure.
vm_required() {
  local w list="${NOMAD_PLEDGE_TEST_REQUIRE:-}"
  for w in ${list//,/ }; do
    [ "$w" = vm ] && return 0
  done
  return 1
}
# The suite cannot run here: skip (exit 0) with the reason, or fail where `vm` is required.
skip_suite() {
  vm_required && die "NOMAD_PLEDGE_TEST_REQUIRE lists \`vm\` but the VM suite cannot run: $*"
  echo "vmtest: SKIP: $*" >&2
  exit 0
}
usage_error() { echo "vmtest: $*" >&2; sed -n '7,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BINARY="${2:?--binary needs a path}"; shift 2 ;;
    --only) ONLY="${2:?--only needs a regex}"; shift 2 ;;
    --timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
    --test-timeout) TEST_TIMEOUT="${2:?--test-timeout needs seconds}"; shift 2 ;;
    --add) ADDS+=("${2:?--add needs HOST[:GUEST]}"); shift 2 ;;
    --append) APPEND="${2:?--append needs kernel arguments}"; shift 2 ;;
    --mem) MEM="${2:?--mem needs MiB}"; shift 2 ;;
    --smp) SMP="${2:?--smp needs a CPU count}"; shift 2 ;;
    --verbose) VERBOSE=1; shift ;;
    --keep) KEEP=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h | --help) usage_error "help" ;;
    *) usage_error "unknown option \`$1\`" ;;
  esac
done
for n in "$TIMEOUT" "$TEST_TIMEOUT" "$MEM" "$SMP"; do
  [[ "$n" =~ ^[1-9][0-9]*$ ]] || usage_error "--timeout, --test-timeout, --mem and --smp take positive integers, got \`$n\`"
done
[ -f "$BINARY" ] || die "binary $BINARY not found: build it first (\`cargo build\`) or pass --binary PATH"
[ "$(id -u)" = 0 ] || skip_suite "must run as root (apt-get, and device nodes in the initramfs)"

# --------------------------------------------------------------------------- host packages
APT_UPDATED=0
apt_update_once() {
  [ "$APT_UPDATED" = 1 ] && return 0
  log "apt-get update"
  apt-get update -qq >&2
  APT_UPDATED=1
}

ensure_packages() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
  command -v cpio >/dev/null || need+=(cpio)
  command -v gcc >/dev/null || need+=(gcc)
  [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need+=(libc6-dev)
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$INSTALL" = 1 ] || die "missing packages: ${need[*]} (install them, or drop --no-install/VMTEST_SKIP_APT)"
  apt_update_once
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
}
ensure_packages

mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8 # one kernel download / probe build at a time; the boots themselves may overlap

# --------------------------------------------------------------------------- kernel
# The kernel package linux-image-amd64 depends on (Debian 12: 6.1.x); falls back to the newest
# linux-image-<ver>-amd64 apt knows. Only boot/vmlinuz-* (and boot/config-*, for reference) is
# unpacked: everything the guest needs (serial console, initramfs, devtmpfs, cgroup2, memcg,
# Landlock) is built into Debian's kernel.
kernel_pkg() {
  if [ -n "${VMTEST_KERNEL_PKG:-}" ]; then
    echo "$VMTEST_KERNEL_PKG"
    return
  fi
  local pkg
  pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')"
  if [ -z "$pkg" ]; then
    pkg="$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-amd64$' 2>/dev/null | awk '{ print $1 }' | sort -V | tail -n 1)"
  fi
  echo "$pkg"
}

find_kernel() {
  if [ -n "${VMTEST_KERNEL:-}" ]; then
    [ -f "$VMTEST_KERNEL" ] || die "VMTEST_KERNEL=$VMTEST_KERNEL is not a file"
    echo "$VMTEST_KERNEL"
    return
  fi
  local pkg
  pkg="$(kernel_pkg)"
  if [ -z "$pkg" ] && [ "$INSTALL" = 1 ]; then
    apt_update_once
    pkg="$(kernel_pkg)"
  fi
  if [ -z "$pkg" ]; then
    # offline: the newest kernel already cached
    local cached
    cached="$(ls -d "$CACHE"/kernel/linux-image-*/vmlinuz 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$cached" ] || die "no linux-image-<ver>-amd64 package known to apt and none cached in $CACHE/kernel (run apt-get update, or set VMTEST_KERNEL)"
    echo "$cached"
    return
  fi
  local dir="$CACHE/kernel/$pkg"
  if [ -f "$dir/vmlinuz" ]; then
    echo "$dir/vmlinuz"
    return
  fi
  [ "$INSTALL" = 1 ] || die "kernel $pkg not cached in $dir (drop --no-install to download it)"
  local tmp="$CACHE/kernel/.download.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "downloading $pkg"
  if ! (cd "$tmp" && apt-get download -qq "$pkg" >&2 2>/dev/null); then
    apt_update_once
    (cd "$tmp" && apt-get download -qq "$pkg" >&2) || die "apt-get download $pkg failed"
  fi
  local deb
  deb="$(ls "$tmp"/*.deb)"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' './boot/config-*'
  local vmlinuz
  vmlinuz="$(ls "$tmp"/boot/vmlinuz-* | head -n 1)"
  [ -f "$vmlinuz" ] || die "$pkg contains no boot/vmlinuz-*"
  mkdir -p "$dir"
  cp "$vmlinuz" "$dir/vmlinuz"
  cp "$tmp"/boot/config-* "$dir/config" 2>/dev/null || true
  basename "$vmlinuz" >"$dir/version"
  rm -rf "$tmp"
  echo "$dir/vmlinuz"
}
VMLINUZ="$(find_kernel)"

# --------------------------------------------------------------------------- vmprobe
PROBE="$CACHE/vmprobe"
if [ ! -x "$PROBE" ] || [ "$HERE/vmprobe.c" -nt "$PROBE" ]; then
  log "building vmprobe (gcc -static)"
  gcc -static -O2 -Wall -Wextra -Werror -o "$PROBE.tmp" "$HERE/vmprobe.c"
  mv "$PROBE.tmp" "$PROBE"
fi
flock -u 8

# --------------------------------------------------------------------------- initramfs
WORK="$(mktemp -d "$CACHE/run.XXXXXX")"
cleanup() {
  if [ "$KEEP" = 1 ]; then
    log "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT

R="$WORK/root"
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,proc,sys,dev,tmp,root,etc,vmtest/bin,vmtest/hack}

# copy_in SRC GUEST: SRC to $R/GUEST; for a dynamically linked ELF also every library ldd
# lists (and the loader) at its host path.
copy_in() {
  local src="$1" guest="$2"
  mkdir -p "$R/$(dirname "$guest")"
  cp -L "$src" "$R/$guest"
  local libs
  if libs="$(ldd "$src" 2>/dev/null)"; then
    local lib
    for lib in $(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' <<<"$libs"); do
      [ -e "$R/$lib" ] && continue
      mkdir -p "$R/$(dirname "$lib")"
      cp -L "$lib" "$R/$lib"
    done
  fi
}

cp /bin/busybox "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list-full); do
  [ -e "$R/$applet" ] || ln -s /bin/busybox "$R/$applet"
done
mknod -m 600 "$R/dev/console" c 5 1
mknod -m 666 "$R/dev/null" c 1 3
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$R/etc/hosts"

install -m 755 "$HERE/guest/init" "$R/init"
install -m 644 "$HERE/guest/lib.sh" "$R/vmtest/lib.sh"
install -m 644 "$HERE/suite.sh" "$R/vmtest/suite.sh"
install -m 755 "$PROBE" "$R/vmtest/bin/vmprobe"
TOKEN="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
echo "$TOKEN" >"$R/vmtest/token"
printf '%s\n' "$ONLY" >"$R/vmtest/filter"
echo "$TEST_TIMEOUT" >"$R/vmtest/test-timeout"
cp "$ROOT"/hack/*.hcl "$R/vmtest/hack/" 2>/dev/null || true

# Our binary, without debug info (a debug build is mostly DWARF; the guest has 1 GiB of RAM).
objcopy --strip-debug "$BINARY" "$WORK/nomad-pledge-driver"
copy_in "$WORK/nomad-pledge-driver" usr/local/bin/nomad-pledge-driver
ln -s nomad-pledge-driver "$R/usr/local/bin/pledge"

for spec in ${ADDS[@]+"${ADDS[@]}"}; do
  src="${spec%%:*}"
  guest="${spec#*:}"
  [ "$guest" != "$spec" ] || guest="$src"
  [ -e "$src" ] || die "--add $spec: $src does not exist"
  copy_in "$src" "${guest#/}"
done

(cd "$R" && find . -print0 | cpio --null -o -H newc -R 0:0 --quiet) | gzip -1 >"$WORK/initrd.gz"

# --------------------------------------------------------------------------- boot
CONSOLE_LOG="$CACHE/last-console.log"
KERNEL_DESC="$(cat "$(dirname "$VMLINUZ")/version" 2>/dev/null || basename "$VMLINUZ")"
log "booting $KERNEL_DESC ($(du -h "$WORK/initrd.gz" | cut -f1) initramfs, timeout ${TIMEOUT}s, console log $CONSOLE_LOG)"
MARK="@@VMTEST:$TOKEN:"
started=$(date +%s)
set +e
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
  -accel tcg -cpu max -m "$MEM" -smp "$SMP" \
  -kernel "$VMLINUZ" -initrd "$WORK/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 $APPEND" \
  -nographic -no-reboot -nic none -monitor none \
  </dev/null 2>&1 |
  tr -d '\r' |
  tee "$CONSOLE_LOG" |
  if [ "$VERBOSE" = 1 ]; then cat; else
    grep --line-buffered -F "${MARK}RESULT " | sed -u "s/^${MARK}RESULT /vmtest: /"
  fi
status=("${PIPESTATUS[@]}")
set -e
elapsed=$(($(date +%s) - started))
qemu_rc=${status[0]}

# --------------------------------------------------------------------------- report
grep -F "$MARK" "$CONSOLE_LOG" | sed "s/^.*${MARK}//" >"$WORK/markers" || true

echo
echo "== VM suite ($KERNEL_DESC, ${elapsed}s) =="
awk '$1 == "INFO" { key = $2; $1 = ""; $2 = ""; sub(/^ +/, ""); printf "   %s: %s\n", key, $0 }' "$WORK/markers"

passed=0
failed=0
skipped=0
while read -r kind status name secs reason; do
  [ "$kind" = RESULT ] || continue
  case "$status" in
    ok)
      passed=$((passed + 1))
      printf 'ok   %s (%ss)\n' "$name" "$secs"
      ;;
    SKIP)
      skipped=$((skipped + 1))
      printf 'SKIP %s: %s\n' "$name" "$reason"
      ;;
    *)
      failed=$((failed + 1))
      printf 'FAIL %s (%ss): %s\n' "$name" "$secs" "$reason"
      # the test's output, framed by the guest
      awk -v n="$name" -v m="$MARK" '
        index($0, m "OUTPUT-END " n) { on = 0 }
        on { print "     | " $0 }
        index($0, m "OUTPUT-BEGIN " n) { on = 1 }' "$CONSOLE_LOG"
      ;;
  esac
done <"$WORK/markers"

problem=""
if ! grep -qx BEGIN "$WORK/markers"; then
  problem="the guest never started the suite"
elif ! grep -qx END "$WORK/markers"; then
  problem="the guest did not finish the suite"
elif [ $((passed + failed + skipped)) -eq 0 ]; then
  problem="no test ran${ONLY:+ (--only $ONLY matched nothing?)}"
fi
if [ -n "$problem" ]; then
  [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ] && problem="$problem: timeout after ${TIMEOUT}s"
  failed=$((failed + 1))
  echo "FAIL $problem (qemu exit status $qemu_rc); last console lines:"
  tail -n 30 "$CONSOLE_LOG" | sed 's/^/     | /'
fi

if [ "$skipped" -gt 0 ] && vm_required; then
  echo "FAIL $skipped test(s) skipped, but NOMAD_PLEDGE_TEST_REQUIRE lists \`vm\`: every test must run"
  failed=$((failed + skipped))
fi
[ "$skipped" -eq 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
