# Prints the task's cgroup (one line, "0::/<path>"). Under Nomad 1.7+ on a cgroup v2 host the
# path is /nomad.slice/share.slice/<alloc id>.cat.scope: the scope the client created, which the
# driver starts the task in. Only /proc/self/cgroup is unveiled.
job "cgroup" {
  type = "batch"

  group "group" {
    task "cat" {
      driver = "pledge"

      config {
        command  = "/bin/cat"
        args     = ["/proc/self/cgroup"]
        promises = "stdio rpath"
        unveil   = ["r:/proc/self/cgroup"]
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
