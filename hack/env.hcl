# Prints the task's environment. The driver passes the task exactly the environment Nomad hands
# it: with filesystem isolation `none` (this driver's), a Nomad client gives the task the
# agent's own environment less its `env.denylist` (VAULT_TOKEN, CONSUL_TOKEN, AWS secrets, ...),
# then the NOMAD_* task variables (NOMAD_ALLOC_ID, NOMAD_TASK_DIR, ...), then the job's env {};
# the driver sets USER/HOME for the task user (nobody, the driver's default). `run` does the
# same, so `GREETING=... nomad-pledge-driver run hack/env.hcl` shows the job's value winning.
job "env" {
  type = "batch"

  group "group" {
    task "env" {
      driver = "pledge"

      env {
        GREETING = "hello from the job"
      }

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
