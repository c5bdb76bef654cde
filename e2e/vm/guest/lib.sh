# Test framework of the VM suite, sourced by /vmtest/suite.sh inside the guest (busybox sh).
#
# A test is a shell function named test_<name> defined at the start of a line of the suite
# file; `vmtest_main` finds them in file order. Each test runs in a fresh `sh` process (under
# `set -e`, with its own timeout and output log), so a test may exit, change directory or
# leave traps without disturbing the others. Outcome: exit 0 = ok, `skip REASON` (exit 77) =
# SKIP, anything else = FAIL (its output is shown by the host).
#
# Lines for the host all start with "@@VMTEST:<token>:" (the token comes from the host, so
# stray console text can never be mistaken for a result):
#   BEGIN                       the suite started
#   INFO <key> <value...>       facts to report (kernel, Landlock ABI, ...)
#   RESULT <ok|FAIL|SKIP> <name> <seconds> [reason]
#   OUTPUT-BEGIN <name> / OUTPUT-END <name>   a failed test's output, in between
#   END                         the suite finished

VMTEST_DIR=/vmtest
VMTEST_TOKEN=$(cat "$VMTEST_DIR/token")
VMTEST_MARK="@@VMTEST:$VMTEST_TOKEN"
VMTEST_FILTER=$(cat "$VMTEST_DIR/filter" 2>/dev/null || true)
VMTEST_TEST_TIMEOUT=$(cat "$VMTEST_DIR/test-timeout" 2>/dev/null || echo 120)
PATH="$VMTEST_DIR/bin:$PATH"
CGROOT=/sys/fs/cgroup

# --- helpers for tests -------------------------------------------------------------------

# info KEY VALUE...: report a fact to the host (fd 3 is the console while a test runs).
info() {
  key=$1
  shift
  echo "$VMTEST_MARK:INFO $key $*" >&3
}

skip() {
  echo "SKIP: $*"
  exit 77
}

fail() {
  echo "FAIL: $*"
  exit 1
}

# assert_eq ACTUAL EXPECTED WHAT
assert_eq() {
  [ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# assert_contains HAYSTACK NEEDLE WHAT
assert_contains() {
  case "$1" in
    *"$2"*) ;;
    *) fail "$3: expected to contain '$2', got '$1'" ;;
  esac
}

# on_exit CMD: run CMD when the test ends (last registered runs first).
VMTEST_CLEANUP=""
on_exit() {
  VMTEST_CLEANUP="$1; $VMTEST_CLEANUP"
}

# cg_make NAME: create the child cgroup /sys/fs/cgroup/vmtest-NAME (removed, with anything
# still running in it, when the test ends) and print its path.
cg_make() {
  cg="$CGROOT/vmtest-$1"
  mkdir "$cg"
  on_exit "cg_remove $cg"
  echo "$cg"
}

cg_remove() {
  [ -d "$1" ] || return 0
  echo 1 >"$1/cgroup.kill" 2>/dev/null || true
  i=0
  while grep -q '^populated 1' "$1/cgroup.events" 2>/dev/null && [ $i -lt 100 ]; do
    sleep 0.1
    i=$((i + 1))
  done
  rmdir "$1" || echo "vmtest: cannot remove $1"
}

# cg_run CGROUP CMD [ARGS...]: run CMD inside CGROUP (the shell moves itself, then execs);
# returns CMD's exit status (128+N when killed by signal N).
cg_run() {
  sh -c 'echo 0 >"$1/cgroup.procs" && shift && exec "$@"' cg_run "$@"
}

# cg_key FILE KEY: the value of KEY in a flat-keyed cgroup file (memory.events, cpu.stat).
cg_key() {
  awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) exit 1 }' "$1"
}

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds; fails after SECONDS.
wait_until() {
  limit=$(($1 * 10))
  shift
  i=0
  until "$@"; do
    i=$((i + 1))
    [ $i -lt $limit ] || return 1
    sleep 0.1
  done
}

# driver_feature_missing OUTPUT: true when the driver says the mode is not implemented yet
# (tests of later features skip until then).
driver_feature_missing() {
  case "$1" in
    *"not implemented"*) return 0 ;;
    *) return 1 ;;
  esac
}

# --- runner ------------------------------------------------------------------------------

vmtest_list() {
  sed -n 's/^\(test_[A-Za-z0-9_]*\)[[:space:]]*()[[:space:]]*{.*$/\1/p' "$VMTEST_SUITE"
}

vmtest_uptime_cs() {
  # centiseconds since boot, from /proc/uptime ("123.45 ...")
  read -r up _ </proc/uptime
  echo "${up%.*}${up#*.}" | sed 's/^0*//; s/^$/0/'
}

vmtest_one() {
  trap 'eval "$VMTEST_CLEANUP"' EXIT
  set -e
  cd /tmp
  "$1"
}

vmtest_main() {
  VMTEST_SUITE=$1
  shift
  if [ "${1:-}" = "--one" ]; then
    vmtest_one "$2"
    exit 0
  fi

  echo "$VMTEST_MARK:BEGIN"
  echo "$VMTEST_MARK:INFO kernel $(uname -r)"
  echo "$VMTEST_MARK:INFO cpus $(grep -c ^processor /proc/cpuinfo)"
  echo "$VMTEST_MARK:INFO memory_mib $(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)"
  for t in $(vmtest_list); do
    name=${t#test_}
    if [ -n "$VMTEST_FILTER" ] && ! echo "$name" | grep -Eq -- "$VMTEST_FILTER"; then
      continue
    fi
    log="/tmp/vmtest-$name.log"
    start=$(vmtest_uptime_cs)
    timeout -s KILL "$VMTEST_TEST_TIMEOUT" sh "$VMTEST_SUITE" --one "$t" 3>&1 >"$log" 2>&1 </dev/null
    rc=$?
    end=$(vmtest_uptime_cs)
    secs=$(awk -v d=$((end - start)) 'BEGIN { printf "%.2f", d / 100 }')
    case $rc in
      0) echo "$VMTEST_MARK:RESULT ok $name $secs" ;;
      77)
        reason=$(sed -n 's/^SKIP: //p' "$log" | head -n 1)
        echo "$VMTEST_MARK:RESULT SKIP $name $secs $reason"
        ;;
      *)
        reason=$(sed -n 's/^FAIL: //p' "$log" | head -n 1)
        [ -n "$reason" ] || reason="exit status $rc"
        [ $rc -ne 137 ] || reason="$reason (killed: timeout ${VMTEST_TEST_TIMEOUT}s?)"
        echo "$VMTEST_MARK:RESULT FAIL $name $secs $reason"
        echo "$VMTEST_MARK:OUTPUT-BEGIN $name"
        cat "$log"
        echo "$VMTEST_MARK:OUTPUT-END $name"
        ;;
    esac
  done
  echo "$VMTEST_MARK:END"
}
