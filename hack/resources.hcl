# NEEDS A HOST WITH THE CGROUP V2 cpu, cpuset AND memory CONTROLLERS (a pure cgroup v2 host, or
# the VM suite, `make vmtest`). On a hybrid host (those controllers bound to cgroup v1, as on
# this project's dev machines) the limit files do not exist and every task fails with
# `/bin/cat: ...: No such file or directory`.
#
# Each task prints one cgroup v2 file of its own scope, showing the limits the driver wrote
# from the task's `resources`. Needs a pure cgroup v2 host (Nomad 1.7+ creates
# /sys/fs/cgroup/nomad.slice/{share,reserve}.slice/<alloc id>.<task>.scope) and
# memory_oversubscription_enabled (hack/client.hcl) for memory_max. Expected output per task
# in hack/README.md; the VM suite (make vmtest) runs the memory tasks through
# `nomad-pledge-driver run`.
job "resources" {
  type = "batch"

  group "group" {

    # memory = 200 MiB, no memory_max: memory.max = 200 MiB = 209715200
    task "memory.max" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/share.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/memory.max"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cpu    = 100
        memory = 200
      }
    }

    # memory_max is the hard limit: memory.max = 250 MiB = 262144000
    task "memory.max.oversub" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/share.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/memory.max"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cpu        = 100
        memory     = 150
        memory_max = 250
      }
    }

    # with memory_max set, memory becomes the soft reservation: memory.low = 150 MiB = 157286400
    task "memory.low.oversub" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/share.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/memory.low"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cpu        = 100
        memory     = 150
        memory_max = 250
      }
    }

    # cpu = 1000 MHz sets no CPU bandwidth limit: cpu.max stays "max 100000" (the driver maps
    # cpu to a proportional cpu.weight, see README "How tasks run")
    task "cpu.max" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/share.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/cpu.max"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cpu = 1000
      }
    }

    # cpu = 1000 MHz as a proportional weight (the driver's choice, see README): cpu.weight = 99
    task "cpu.weight" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/share.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/cpu.weight"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cpu = 1000
      }
    }

    # one reserved core: its cpuset, "0" (run reserves core 0)
    task "cpuset.cores" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/reserve.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/cpuset.cpus"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cores = 1
      }
    }

    # one reserved core: the scope lives under reserve.slice, no bandwidth limit: "max 100000"
    task "cpu.max.cores" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/sys/fs/cgroup/nomad.slice/reserve.slice/${NOMAD_ALLOC_ID}.${NOMAD_TASK_NAME}.scope/cpu.max"]
        promises = "stdio rpath"
        unveil   = ["r:/sys/fs/cgroup/nomad.slice"]
      }

      resources {
        cores = 1
      }
    }
  }
}
