# Prints the task's environment: the Nomad task variables (NOMAD_ALLOC_ID, NOMAD_TASK_DIR, ...)
# and USER/HOME of the task user (nobody, the driver's default), nothing inherited from the agent.
job "env" {
  type = "batch"

  group "group" {
    task "env" {
      driver = "pledge"

      config {
        command  = "env"
        promises = "stdio rpath"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
