# Prints the task's /proc/self/cgroup. On a pure cgroup v2 host that is one line, "0::/<path>";
# under Nomad 1.7+ the path is /nomad.slice/share.slice/<alloc id>.cat.scope: the scope the
# client created, which the driver starts the task in. On a hybrid host (v1 controllers plus
# cgroup2 at /sys/fs/cgroup/unified) there is also one "N:controller:/path" line per v1
# hierarchy; the "0::" line is still the task's v2 scope. Only /proc/self/cgroup is unveiled.
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
