# Lists the processes the task can see. The task has its own PID namespace with a fresh /proc:
# only the driver's per-task supervisor (PID 1) and `ps` itself appear, nothing of the host.
job "ps" {
  type = "batch"

  group "group" {
    task "ps" {
      driver = "pledge"

      config {
        command  = "ps"
        args     = ["aux"]
        promises = "stdio rpath exec"
        unveil   = ["r:/proc"]
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
