# Host volumes. A Nomad client declares them (`host_volume "shared" { path = "/srv/shared" }` in
# its client block, see client.hcl); with `run`, give them on the command line:
#
#   mkdir -p /tmp/pledge-shared && chmod 1777 /tmp/pledge-shared
#   nomad-pledge-driver run hack/volume.hcl --host-volume shared=/tmp/pledge-shared
#
# The volume appears at local/data (writable) and again at local/ro (read-only) in the task's
# own mount namespace, and is unveiled automatically: the unveil list names only the tools.
job "volume" {
  type = "batch"

  group "group" {
    volume "data" {
      type   = "host"
      source = "shared"
    }

    task "write" {
      driver = "pledge"

      volume_mount {
        volume      = "data"
        destination = "local/data"
      }

      volume_mount {
        volume      = "data"
        destination = "local/ro"
        read_only   = true
      }

      config {
        command  = "/bin/sh"
        args     = ["-c", "echo hello from ${NOMAD_TASK_NAME} > local/data/greeting && cat local/ro/greeting && (echo x > local/ro/greeting) 2>/dev/null || echo read-only"]
        promises = "stdio rpath wpath cpath proc exec"
        unveil   = ["rx:/bin", "rx:/usr/bin"]
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
