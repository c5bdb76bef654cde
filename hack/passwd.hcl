# Expected to FAIL: /etc/passwd is world-readable, but it is not unveiled, so Landlock denies
# the open and cat exits 1 ("Permission denied"). Shows that unveil, not file permissions,
# decides what a task can read. Add `unveil = ["r:/etc/passwd"]` and it succeeds.
job "passwd" {
  type = "batch"

  group "group" {
    task "cat" {
      driver = "pledge"

      config {
        command  = "cat"
        args     = ["/etc/passwd"]
        promises = "stdio rpath"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
