# The VM suite: runs inside the pure cgroup-v2 guest built by e2e/vm/run.sh (busybox sh, as
# root, one boot for every test). Add a test by adding a function `test_<name>() {` at the start
# of a line; see guest/lib.sh for the helpers (cg_make, cg_run, cg_key, info, skip, fail, ...).
# Tests run in file order, each in its own shell under `set -e`.
#
# In the guest: busybox applets in /bin, our binary as /usr/local/bin/nomad-pledge-driver (and
# the `pledge` link), vmprobe (memory hog, Landlock ABI) in /vmtest/bin, the hack/ jobs in
# /vmtest/hack. No network except loopback.

. /vmtest/lib.sh

DRIVER=/usr/local/bin/nomad-pledge-driver

# --- the machine the later tests rely on -------------------------------------------------

test_cgroup2_is_pure_v2_with_controllers() {
  mounts=$(awk '$2 ~ /^\/sys\/fs\/cgroup/ { print $2 " " $3 }' /proc/mounts)
  assert_eq "$mounts" "/sys/fs/cgroup cgroup2" "cgroup mounts under /sys/fs/cgroup"
  controllers=$(cat $CGROOT/cgroup.controllers)
  enabled=$(cat $CGROOT/cgroup.subtree_control)
  info cgroup_controllers "$controllers"
  for c in cpu memory cpuset pids io; do
    echo " $controllers " | grep -q " $c " || fail "controller $c missing from cgroup.controllers ($controllers)"
    echo " $enabled " | grep -q " $c " || fail "controller $c not enabled in the root's cgroup.subtree_control ($enabled)"
  done
  cg=$(cg_make files)
  for f in memory.max memory.low memory.events memory.current cpu.max cpu.weight cpu.stat \
    cpuset.cpus cpuset.cpus.effective pids.max pids.current cgroup.kill cgroup.events; do
    [ -e "$cg/$f" ] || fail "child cgroup lacks $f"
  done
}

test_memory_max_oom_kills_and_counts() {
  cg=$(cg_make oom)
  echo 33554432 >"$cg/memory.max"
  assert_eq "$(cat "$cg/memory.max")" 33554432 "memory.max"
  # no swap in the VM, but make sure the hog cannot escape into it
  echo 0 >"$cg/memory.swap.max" 2>/dev/null || true

  # within the limit: runs to completion, no OOM kill
  out=$(cg_run "$cg" vmprobe memhog 8)
  assert_eq "$out" "memhog: touched 8 MiB" "memhog 8 MiB under memory.max=32M"
  assert_eq "$(cg_key "$cg/memory.events" oom_kill)" 0 "oom_kill after a hog within the limit"

  # beyond the limit: SIGKILLed by the OOM killer, counted once
  rc=0
  out=$(cg_run "$cg" vmprobe memhog 256) || rc=$?
  assert_eq "$rc" 137 "exit status of memhog 256 MiB under memory.max=32M (128+SIGKILL)"
  assert_eq "$out" "" "output of the killed hog"
  assert_eq "$(cg_key "$cg/memory.events" oom_kill)" 1 "memory.events oom_kill"
  grep . "$cg/memory.events"
}

test_memory_low_and_max_accept_nomad_values() {
  # the values hack/resources.hcl asks for: memory=150, memory_max=250 (MiB)
  cg=$(cg_make memvalues)
  echo 262144000 >"$cg/memory.max"
  echo 157286400 >"$cg/memory.low"
  assert_eq "$(cat "$cg/memory.max")" 262144000 "memory.max"
  assert_eq "$(cat "$cg/memory.low")" 157286400 "memory.low"
  echo max >"$cg/memory.max"
  assert_eq "$(cat "$cg/memory.max")" max "memory.max after writing max"
}

test_cpu_max_throttles() {
  cg=$(cg_make cpu)
  echo "50000 100000" >"$cg/cpu.max"
  assert_eq "$(cat "$cg/cpu.max")" "50000 100000" "cpu.max"
  echo 200 >"$cg/cpu.weight"
  assert_eq "$(cat "$cg/cpu.weight")" 200 "cpu.weight"
  # a busy loop at half a CPU gets throttled (counts periods, not time)
  cg_run "$cg" timeout -s KILL 2 sh -c 'while :; do :; done' || true
  throttled=$(cg_key "$cg/cpu.stat" nr_throttled)
  [ "$throttled" -gt 0 ] || fail "cpu.stat nr_throttled is $throttled after 2 s of busy loop at cpu.max=50000/100000"
  usage=$(cg_key "$cg/cpu.stat" usage_usec)
  [ "$usage" -gt 0 ] || fail "cpu.stat usage_usec is $usage"
}

test_cpuset_cpus_pins() {
  cg=$(cg_make cpuset)
  echo 1 >"$cg/cpuset.cpus"
  assert_eq "$(cat "$cg/cpuset.cpus.effective")" 1 "cpuset.cpus.effective"
  allowed=$(cg_run "$cg" awk '/^Cpus_allowed_list:/ { print $2 }' /proc/self/status)
  assert_eq "$allowed" 1 "Cpus_allowed_list of a process in the cgroup"
}

test_pids_max_limits_forks() {
  cg=$(cg_make pids)
  echo 4 >"$cg/pids.max"
  # the shell itself counts: it can start at most 3 children
  cg_run "$cg" sh -c 'for i in 1 2 3 4 5 6; do sleep 30 & done; true' || true
  assert_eq "$(cat "$cg/pids.current")" 3 "pids.current (pids.max=4, shell exited)"
  max=$(cg_key "$cg/pids.events" max)
  [ "$max" -gt 0 ] || fail "pids.events max is $max after forking past pids.max"
}

test_cgroup_kill_empties_the_group() {
  cg=$(cg_make kill)
  cg_run "$cg" sh -c 'sleep 300 & sleep 300 & trap "" TERM; sleep 300 & true'
  wait_until 10 grep -q '^populated 1' "$cg/cgroup.events" || fail "cgroup never populated"
  echo 1 >"$cg/cgroup.kill"
  wait_until 30 grep -q '^populated 0' "$cg/cgroup.events" || fail "cgroup.kill left processes: $(cat "$cg/cgroup.procs")"
}

test_landlock_abi() {
  abi=$(vmprobe landlock-abi)
  info landlock_abi "$abi"
  [ "$abi" -ge 1 ] || fail "Landlock is not enabled in the VM kernel (ABI $abi)"
}

# --- our binary --------------------------------------------------------------------------

test_driver_version() {
  out=$($DRIVER --version)
  info driver_version "$out"
  echo "$out" | grep -Eq '^nomad-pledge-driver [0-9]+\.[0-9]+\.[0-9]+' ||
    fail "unexpected --version output: $out"
}

test_pledge_landlock_probe_matches_kernel() {
  rc=0
  out=$(pledge -T unveil 2>&1) || rc=$?
  driver_feature_missing "$out" && skip "pledge launcher not implemented yet: $out"
  abi=$(vmprobe landlock-abi)
  if [ "$abi" -ge 1 ]; then want=0; else want=1; fi
  assert_eq "$rc" "$want" "pledge -T unveil exit status with Landlock ABI $abi"
  rc=0
  pledge -T pledge || rc=$?
  assert_eq "$rc" 0 "pledge -T pledge exit status"
}

test_pledge_unveil_on_older_landlock_abi() {
  rc=0
  out=$(pledge -p 'stdio rpath' -v r:/etc/passwd cat /etc/passwd 2>&1) || rc=$?
  driver_feature_missing "$out" && skip "pledge launcher not implemented yet: $out"
  assert_eq "$rc" 0 "pledge with -v r:/etc/passwd cat /etc/passwd (output: $out)"
  assert_contains "$out" "root:x:0:0" "cat output"
  rc=0
  out=$(pledge -p 'stdio rpath' cat /etc/passwd 2>&1) || rc=$?
  [ "$rc" -ne 0 ] || fail "cat /etc/passwd succeeded without an unveil (output: $out)"
}

# --- driver tasks with resources (need `nomad-pledge-driver run`) ------------------------

# run_resources_task TASK: run one task of hack/resources.hcl through the real plugin path;
# its combined output lands in $RUN_OUT. Skips while `run` is not implemented.
run_resources_task() {
  rc=0
  RUN_OUT=$($DRIVER run /vmtest/hack/resources.hcl --task "$1" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ]; then
    driver_feature_missing "$RUN_OUT" && skip "nomad-pledge-driver run not implemented yet: $RUN_OUT"
    fail "run --task $1 exited $rc: $RUN_OUT"
  fi
  echo "$RUN_OUT"
}

test_run_resources_memory_max() {
  run_resources_task memory.max
  assert_contains "$RUN_OUT" 209715200 "memory.max of a task with memory=200"
}

test_run_resources_memory_max_oversubscribed() {
  run_resources_task memory.max.oversub
  assert_contains "$RUN_OUT" 262144000 "memory.max of a task with memory=150 memory_max=250"
}

test_run_resources_memory_low_oversubscribed() {
  run_resources_task memory.low.oversub
  assert_contains "$RUN_OUT" 157286400 "memory.low of a task with memory=150 memory_max=250"
}

test_run_resources_cpu_weight_not_bandwidth() {
  # cpu = 1000 MHz: the driver sets a proportional cpu.weight and no bandwidth cap (README,
  # "How tasks run"), so cpu.max stays "max" while cpu.weight follows Nomad's MHz.
  run_resources_task cpu.max
  assert_contains "$RUN_OUT" "max 100000" "cpu.max of a task with cpu=1000 (no hard cap)"
  run_resources_task cpu.weight
  assert_contains "$RUN_OUT" "==> task \"cpu.weight\" exited: exit_code=0" "reading cpu.weight"
  weight=$(printf '%s\n' "$RUN_OUT" | grep -E '^[0-9]+$' | head -n1)
  # runc's log-quadratic shares→weight mapping: 1000 MHz → 99 (1024 → 100).
  assert_eq "$weight" "99" "cpu.weight of a task with cpu=1000"
}

test_run_resources_reserved_core() {
  # cores = 1: the scope lives under reserve.slice and its cpuset is the reserved core.
  run_resources_task cpu.max.cores
  assert_contains "$RUN_OUT" "exit_code=0" "the task read its own reserve.slice scope"
  run_resources_task cpuset.cores
  assert_contains "$RUN_OUT" "==> task \"cpuset.cores\" exited: exit_code=0" "reading cpuset.cpus"
  cpus=$(printf '%s\n' "$RUN_OUT" | grep -E '^[0-9]+$' | head -n1)
  assert_eq "$cpus" "0" "cpuset.cpus of a task with cores=1 (run reserves core 0)"
}

test_run_task_oom_killed() {
  # A task exceeding memory (32 MiB, no memory_max) is OOM-killed; WaitTask says oom_killed.
  cat >/tmp/oom.hcl <<'JOB'
job "oom" {
  group "g" {
    task "hog" {
      driver = "pledge"
      config {
        command  = "/vmtest/bin/vmprobe"
        args     = ["memhog", "256"]
        promises = "stdio rpath"
      }
      resources {
        memory = 32
      }
    }
  }
}
JOB
  rc=0
  out=$($DRIVER run /tmp/oom.hcl 2>&1) || rc=$?
  assert_contains "$out" "oom_killed=true" "run's exit line for the memory hog"
  assert_contains "$out" "signal=9" "the hog died by SIGKILL"
}

test_run_pids_limit_sets_pids_max() {
  # The task's pids_limit becomes pids.max of its scope; forking past it fails (pids.events).
  cat >/tmp/pids.hcl <<'JOB'
job "pids" {
  group "g" {
    task "fork" {
      driver = "pledge"
      config {
        command    = "/bin/sh"
        args       = ["-c", "d=/sys/fs/cgroup/nomad.slice/share.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope; echo pids.max=$(cat $d/pids.max); i=0; (while [ $i -lt 20 ]; do sleep 5 & i=$((i+1)); done); cat $d/pids.events"]
        promises   = "stdio rpath proc exec"
        unveil     = ["r:/sys/fs/cgroup/nomad.slice", "rx:/bin"]
        pids_limit = 8
      }
    }
  }
}
JOB
  rc=0
  out=$($DRIVER run /tmp/pids.hcl 2>&1) || rc=$?
  assert_contains "$out" "pids.max=8" "pids.max of a task with pids_limit = 8"
  max=$(printf '%s\n' "$out" | awk '$1 == "max" { print $2 }' | head -n1)
  [ -n "$max" ] && [ "$max" -gt 0 ] || fail "pids.events max is '$max' after forking past pids_limit: $out"
}

vmtest_main /vmtest/suite.sh "$@"
