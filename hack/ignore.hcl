# A service that ignores SIGINT and SIGTERM. Stopping it shows the driver's escalation: the
# stop signal is sent, nothing happens for kill_timeout (5 s), then the driver SIGKILLs every
# process in the task's cgroup (each pid in cgroup.procs; it never writes cgroup.kill, see
# README "How tasks run"). `nomad job stop ignore` still finishes "complete".
job "ignore" {
  group "group" {
    task "ignore" {
      driver       = "pledge"
      kill_timeout = "5s"

      config {
        command  = "python3"
        args     = ["-c", "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ignoring SIGINT and SIGTERM', flush=True); signal.pause()"]
        promises = "stdio rpath tty"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }

    update {
      min_healthy_time = "2s"
    }
  }
}
