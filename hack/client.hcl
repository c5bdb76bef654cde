# Agent configuration for trying the driver with a development agent (run as root; the driver
# needs it for cgroups, namespaces and switching to the task user):
#
#   cargo build --release
#   mkdir -p /tmp/nomad-plugins && cp target/release/nomad-pledge-driver /tmp/nomad-plugins/
#   sudo nomad agent -dev -config hack/client.hcl
#   nomad job run hack/env.hcl
#
# See hack/README.md for what each example job shows.

# The dev agent is also a server. Oversubscription lets jobs set `memory_max` (resources.hcl,
# http.hcl); without it Nomad silently drops memory_max.
server {
  enabled = true

  default_scheduler_config {
    memory_oversubscription_enabled = true
  }
}

client {
  enabled = true

  # For volume.hcl (the directory must exist before the agent starts):
  # host_volume "shared" {
  #   path = "/srv/shared"
  # }
}

# Nomad starts every executable in this directory as a plugin; ours must be named
# nomad-pledge-driver, the same name as the plugin block below.
plugin_dir = "/tmp/nomad-plugins"

# Since Nomad 1.10 the block is mandatory, even when the config is empty. It is keyed by the
# plugin's file name; jobs then say `driver = "pledge"`.
plugin "nomad-pledge-driver" {
  config {
    # Optional. By default tasks are sandboxed by this binary's own pledge-compatible launcher
    # (seccomp-BPF + Landlock). To use Justine Tunney's pledge.com (1.8 or later, assimilated
    # to a native ELF) instead:
    # pledge_executable = "/opt/bin/pledge-1.8.com"
  }
}

# Promises, for reference (pledge-compatible names):
#   stdio      basic I/O on open descriptors, memory, time, signals to itself, threads
#   rpath      read-only path operations       wpath   write path operations
#   cpath      create/remove files and dirs    dpath   create special files (mknod, mkfifo)
#   flock      file locks                      fattr   chmod, utimes and friends
#   chown      change file owners              tty     terminal ioctls
#   recvfd     receive fds (SCM_RIGHTS)        sendfd  send fds (SCM_RIGHTS)
#   inet       IPv4/IPv6 sockets               unix    local sockets
#   dns        resolver sockets and files      proc    fork, kill, priorities
#   exec       execve                          prot_exec  executable memory
#   id         setuid/setgid and friends       tmppath /tmp
#   vminfo     /proc memory and cpu information
# Unveil entries are "PERMS:PATH" with PERMS from r (read), w (write), x (execute), c (create).
