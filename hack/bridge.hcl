# Group networking: the group gets its own network namespace (Nomad's bridge CNI setup: needs
# the CNI plugins in /opt/cni/bin). "server" listens on port 8181 inside the namespace, Nomad
# maps a dynamic host port to it and checks it over HTTP; "probe" (poststart) reaches the server
# through the namespace's own loopback, which only tasks of this group share.
#   nomad service info pybridge   -> the host address:port; curl it for "Directory listing for /"
job "bridge" {
  group "group" {
    network {
      mode = "bridge"
      port "http" {
        to = 8181
      }
    }

    service {
      provider = "nomad"
      name     = "pybridge"
      port     = "http"

      check {
        name     = "up"
        type     = "http"
        path     = "/"
        interval = "6s"
        timeout  = "1s"
      }
    }

    task "server" {
      driver = "pledge"
      user   = "nobody"

      config {
        command  = "python3"
        args     = ["-m", "http.server", "--directory", "${NOMAD_TASK_DIR}", "8181"]
        promises = "stdio rpath inet"
        unveil   = ["r:/etc/mime.types", "r:${NOMAD_TASK_DIR}"]
      }
    }

    task "probe" {
      driver = "pledge"
      user   = "nobody"

      lifecycle {
        hook = "poststart"
      }

      config {
        command  = "curl"
        args     = ["--silent", "--show-error", "--fail", "--retry", "20", "--retry-connrefused", "--retry-delay", "1", "http://127.0.0.1:8181/"]
        promises = "stdio rpath inet dns sendfd"
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
