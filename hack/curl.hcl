# curl against a web server in the same group, over loopback only (never the internet):
# "server" (python3 http.server on 127.0.0.1:8182) is a prestart sidecar, "curl" fetches its
# page (retrying until the server listens) and exits 0; the job then completes.
# Promises as the original example: curl needs inet, dns (its resolver, even for an IP
# literal) and sendfd.
job "curl" {
  type = "batch"

  group "group" {
    network {
      mode = "host"
      port "http" {
        static = 8182
      }
    }

    task "server" {
      driver = "pledge"
      user   = "nobody"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        command  = "python3"
        args     = ["-m", "http.server", "--bind", "127.0.0.1", "--directory", "${NOMAD_TASK_DIR}", "8182"]
        promises = "stdio rpath inet"
        unveil   = ["r:/etc/mime.types", "r:${NOMAD_TASK_DIR}"]
      }
    }

    task "curl" {
      driver = "pledge"
      user   = "nobody"

      config {
        command  = "curl"
        args     = ["--silent", "--show-error", "--fail", "--retry", "20", "--retry-connrefused", "--retry-delay", "1", "http://127.0.0.1:8182/"]
        promises = "stdio rpath inet dns sendfd"
      }
    }

    restart {
      attempts = 0
      mode     = "fail"
    }
  }
}
