# A long-running web server on the loopback interface: python3's http.server on 127.0.0.1:8181
# (the group's `http` port, passed as ${NOMAD_PORT_http}) serving the (empty) task directory.
# Only what it needs is unveiled; `inet` lets it listen, and on kernels with Landlock network
# rules (ABI >= 4) it may bind only its allocated port.
# Try it from the same machine:
#   curl -s http://127.0.0.1:8181/    -> an HTML page titled "Directory listing for /"
job "http" {
  group "group" {
    network {
      mode = "host"
      port "http" {
        static = 8181
      }
    }

    task "server" {
      driver = "pledge"
      user   = "nobody"

      config {
        command    = "python3"
        args       = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", "${NOMAD_TASK_DIR}", "${NOMAD_PORT_http}"]
        promises   = "stdio rpath inet"
        unveil     = ["r:/etc/mime.types", "r:${NOMAD_TASK_DIR}"]
        importance = "low"
      }

      resources {
        memory     = 128
        memory_max = 200
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }

    update {
      min_healthy_time = "2s"
    }
  }
}
