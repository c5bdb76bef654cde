# A long-running service that does nothing: shows start, stop (SIGTERM reaches `sleep`, which is
# never PID 1 of its namespace) and `importance`, which becomes the task's nice value
# (lowest = 19).
job "sleep" {
  group "group" {
    task "sleep" {
      driver = "pledge"
      user   = "nobody"

      config {
        command    = "sleep"
        args       = ["infinity"]
        promises   = "stdio rpath"
        importance = "lowest"
      }
    }
  }
}
