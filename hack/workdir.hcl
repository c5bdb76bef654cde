# `work_dir` (our addition): the task starts in the given directory instead of the task
# directory. /bin/pwd prints it: the task's local/ directory (NOMAD_TASK_DIR).
job "workdir" {
  type = "batch"

  group "group" {
    task "pwd" {
      driver = "pledge"

      config {
        command  = "/bin/pwd"
        work_dir = "${NOMAD_TASK_DIR}"
        promises = "stdio rpath"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
