//! Syscall numbers ↔ names for the architecture the filter is built for.
//!
//! Only x86-64 is supported by the seccomp policy (pledge-semantics.md §2 is x86-64); on other
//! architectures the table is empty and [`crate::sandbox::seccomp::build_filter`] refuses with
//! `SeccompError::UnsupportedArch`. Names are the kernel's (`newfstatat`, `pread64`, `rt_sigaction`).

/// `AUDIT_ARCH_*` value of the architecture this binary runs on (what `seccomp_data.arch` holds).
#[cfg(target_arch = "x86_64")]
pub const AUDIT_ARCH: Option<u32> = Some(0xC000_003E); // AUDIT_ARCH_X86_64
#[cfg(not(target_arch = "x86_64"))]
pub const AUDIT_ARCH: Option<u32> = None;

/// x32 ABI syscalls carry this bit in their number on x86-64.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

macro_rules! table {
    ($($name:ident)*) => {
        &[$((libc::$name as i64, strip_sys(stringify!($name))),)*]
    };
}

const fn strip_sys(s: &'static str) -> &'static str {
    // `SYS_read` → `read`
    let (_, rest) = s.as_bytes().split_at(4);
    match std::str::from_utf8(rest) {
        Ok(s) => s,
        Err(_) => panic!("syscall constant is not ASCII"),
    }
}

/// (number, name) of every x86-64 syscall libc knows, plus the newer ones it does not name yet.
#[cfg(target_arch = "x86_64")]
static TABLE: &[(i64, &str)] = table![
    SYS_read
    SYS_write
    SYS_open
    SYS_close
    SYS_stat
    SYS_fstat
    SYS_lstat
    SYS_poll
    SYS_lseek
    SYS_mmap
    SYS_mprotect
    SYS_munmap
    SYS_brk
    SYS_rt_sigaction
    SYS_rt_sigprocmask
    SYS_rt_sigreturn
    SYS_ioctl
    SYS_pread64
    SYS_pwrite64
    SYS_readv
    SYS_writev
    SYS_access
    SYS_pipe
    SYS_select
    SYS_sched_yield
    SYS_mremap
    SYS_msync
    SYS_mincore
    SYS_madvise
    SYS_shmget
    SYS_shmat
    SYS_shmctl
    SYS_dup
    SYS_dup2
    SYS_pause
    SYS_nanosleep
    SYS_getitimer
    SYS_alarm
    SYS_setitimer
    SYS_getpid
    SYS_sendfile
    SYS_socket
    SYS_connect
    SYS_accept
    SYS_sendto
    SYS_recvfrom
    SYS_sendmsg
    SYS_recvmsg
    SYS_shutdown
    SYS_bind
    SYS_listen
    SYS_getsockname
    SYS_getpeername
    SYS_socketpair
    SYS_setsockopt
    SYS_getsockopt
    SYS_clone
    SYS_fork
    SYS_vfork
    SYS_execve
    SYS_exit
    SYS_wait4
    SYS_kill
    SYS_uname
    SYS_semget
    SYS_semop
    SYS_semctl
    SYS_shmdt
    SYS_msgget
    SYS_msgsnd
    SYS_msgrcv
    SYS_msgctl
    SYS_fcntl
    SYS_flock
    SYS_fsync
    SYS_fdatasync
    SYS_truncate
    SYS_ftruncate
    SYS_getdents
    SYS_getcwd
    SYS_chdir
    SYS_fchdir
    SYS_rename
    SYS_mkdir
    SYS_rmdir
    SYS_creat
    SYS_link
    SYS_unlink
    SYS_symlink
    SYS_readlink
    SYS_chmod
    SYS_fchmod
    SYS_chown
    SYS_fchown
    SYS_lchown
    SYS_umask
    SYS_gettimeofday
    SYS_getrlimit
    SYS_getrusage
    SYS_sysinfo
    SYS_times
    SYS_ptrace
    SYS_getuid
    SYS_syslog
    SYS_getgid
    SYS_setuid
    SYS_setgid
    SYS_geteuid
    SYS_getegid
    SYS_setpgid
    SYS_getppid
    SYS_getpgrp
    SYS_setsid
    SYS_setreuid
    SYS_setregid
    SYS_getgroups
    SYS_setgroups
    SYS_setresuid
    SYS_getresuid
    SYS_setresgid
    SYS_getresgid
    SYS_getpgid
    SYS_setfsuid
    SYS_setfsgid
    SYS_getsid
    SYS_capget
    SYS_capset
    SYS_rt_sigpending
    SYS_rt_sigtimedwait
    SYS_rt_sigqueueinfo
    SYS_rt_sigsuspend
    SYS_sigaltstack
    SYS_utime
    SYS_mknod
    SYS_uselib
    SYS_personality
    SYS_ustat
    SYS_statfs
    SYS_fstatfs
    SYS_sysfs
    SYS_getpriority
    SYS_setpriority
    SYS_sched_setparam
    SYS_sched_getparam
    SYS_sched_setscheduler
    SYS_sched_getscheduler
    SYS_sched_get_priority_max
    SYS_sched_get_priority_min
    SYS_sched_rr_get_interval
    SYS_mlock
    SYS_munlock
    SYS_mlockall
    SYS_munlockall
    SYS_vhangup
    SYS_modify_ldt
    SYS_pivot_root
    SYS__sysctl
    SYS_prctl
    SYS_arch_prctl
    SYS_adjtimex
    SYS_setrlimit
    SYS_chroot
    SYS_sync
    SYS_acct
    SYS_settimeofday
    SYS_mount
    SYS_umount2
    SYS_swapon
    SYS_swapoff
    SYS_reboot
    SYS_sethostname
    SYS_setdomainname
    SYS_iopl
    SYS_ioperm
    SYS_init_module
    SYS_delete_module
    SYS_quotactl
    SYS_nfsservctl
    SYS_getpmsg
    SYS_putpmsg
    SYS_afs_syscall
    SYS_tuxcall
    SYS_security
    SYS_gettid
    SYS_readahead
    SYS_setxattr
    SYS_lsetxattr
    SYS_fsetxattr
    SYS_getxattr
    SYS_lgetxattr
    SYS_fgetxattr
    SYS_listxattr
    SYS_llistxattr
    SYS_flistxattr
    SYS_removexattr
    SYS_lremovexattr
    SYS_fremovexattr
    SYS_tkill
    SYS_time
    SYS_futex
    SYS_sched_setaffinity
    SYS_sched_getaffinity
    SYS_set_thread_area
    SYS_io_setup
    SYS_io_destroy
    SYS_io_getevents
    SYS_io_submit
    SYS_io_cancel
    SYS_get_thread_area
    SYS_lookup_dcookie
    SYS_epoll_create
    SYS_epoll_ctl_old
    SYS_epoll_wait_old
    SYS_remap_file_pages
    SYS_getdents64
    SYS_set_tid_address
    SYS_restart_syscall
    SYS_semtimedop
    SYS_fadvise64
    SYS_timer_create
    SYS_timer_settime
    SYS_timer_gettime
    SYS_timer_getoverrun
    SYS_timer_delete
    SYS_clock_settime
    SYS_clock_gettime
    SYS_clock_getres
    SYS_clock_nanosleep
    SYS_exit_group
    SYS_epoll_wait
    SYS_epoll_ctl
    SYS_tgkill
    SYS_utimes
    SYS_vserver
    SYS_mbind
    SYS_set_mempolicy
    SYS_get_mempolicy
    SYS_mq_open
    SYS_mq_unlink
    SYS_mq_timedsend
    SYS_mq_timedreceive
    SYS_mq_notify
    SYS_mq_getsetattr
    SYS_kexec_load
    SYS_waitid
    SYS_add_key
    SYS_request_key
    SYS_keyctl
    SYS_ioprio_set
    SYS_ioprio_get
    SYS_inotify_init
    SYS_inotify_add_watch
    SYS_inotify_rm_watch
    SYS_migrate_pages
    SYS_openat
    SYS_mkdirat
    SYS_mknodat
    SYS_fchownat
    SYS_futimesat
    SYS_newfstatat
    SYS_unlinkat
    SYS_renameat
    SYS_linkat
    SYS_symlinkat
    SYS_readlinkat
    SYS_fchmodat
    SYS_faccessat
    SYS_pselect6
    SYS_ppoll
    SYS_unshare
    SYS_set_robust_list
    SYS_get_robust_list
    SYS_splice
    SYS_tee
    SYS_sync_file_range
    SYS_vmsplice
    SYS_move_pages
    SYS_utimensat
    SYS_epoll_pwait
    SYS_signalfd
    SYS_timerfd_create
    SYS_eventfd
    SYS_fallocate
    SYS_timerfd_settime
    SYS_timerfd_gettime
    SYS_accept4
    SYS_signalfd4
    SYS_eventfd2
    SYS_epoll_create1
    SYS_dup3
    SYS_pipe2
    SYS_inotify_init1
    SYS_preadv
    SYS_pwritev
    SYS_rt_tgsigqueueinfo
    SYS_perf_event_open
    SYS_recvmmsg
    SYS_fanotify_init
    SYS_fanotify_mark
    SYS_prlimit64
    SYS_name_to_handle_at
    SYS_open_by_handle_at
    SYS_clock_adjtime
    SYS_syncfs
    SYS_sendmmsg
    SYS_setns
    SYS_getcpu
    SYS_process_vm_readv
    SYS_process_vm_writev
    SYS_kcmp
    SYS_finit_module
    SYS_sched_setattr
    SYS_sched_getattr
    SYS_renameat2
    SYS_seccomp
    SYS_getrandom
    SYS_memfd_create
    SYS_kexec_file_load
    SYS_bpf
    SYS_execveat
    SYS_userfaultfd
    SYS_membarrier
    SYS_mlock2
    SYS_copy_file_range
    SYS_preadv2
    SYS_pwritev2
    SYS_pkey_mprotect
    SYS_pkey_alloc
    SYS_pkey_free
    SYS_statx
    SYS_rseq
    SYS_pidfd_send_signal
    SYS_io_uring_setup
    SYS_io_uring_enter
    SYS_io_uring_register
    SYS_open_tree
    SYS_move_mount
    SYS_fsopen
    SYS_fsconfig
    SYS_fsmount
    SYS_fspick
    SYS_pidfd_open
    SYS_clone3
    SYS_close_range
    SYS_openat2
    SYS_pidfd_getfd
    SYS_faccessat2
    SYS_process_madvise
    SYS_epoll_pwait2
    SYS_mount_setattr
    SYS_quotactl_fd
    SYS_landlock_create_ruleset
    SYS_landlock_add_rule
    SYS_landlock_restrict_self
    SYS_memfd_secret
    SYS_process_mrelease
    SYS_futex_waitv
    SYS_set_mempolicy_home_node
    SYS_fchmodat2
    SYS_mseal
];

/// Syscalls newer than the libc crate's list (numbers from the kernel's syscall_64.tbl).
#[cfg(target_arch = "x86_64")]
static NEWER: &[(i64, &str)] = &[
    (451, "cachestat"),
    (453, "map_shadow_stack"),
    (454, "futex_wake"),
    (455, "futex_wait"),
    (456, "futex_requeue"),
    (457, "statmount"),
    (458, "listmount"),
    (459, "lsm_get_self_attr"),
    (460, "lsm_set_self_attr"),
    (461, "lsm_list_modules"),
    (463, "setxattrat"),
    (464, "getxattrat"),
    (465, "listxattrat"),
    (466, "removexattrat"),
    (467, "open_tree_attr"),
    (468, "file_getattr"),
    (469, "file_setattr"),
];

#[cfg(not(target_arch = "x86_64"))]
static TABLE: &[(i64, &str)] = &[];
#[cfg(not(target_arch = "x86_64"))]
static NEWER: &[(i64, &str)] = &[];

/// Every known (number, name) pair, in table order.
pub fn all() -> impl Iterator<Item = (i64, &'static str)> {
    TABLE.iter().chain(NEWER.iter()).copied()
}

/// The kernel name of syscall `nr`, if known.
pub fn name(nr: i64) -> Option<&'static str> {
    all().find(|(n, _)| *n == nr).map(|(_, s)| s)
}

/// The number of the syscall called `name`, if it exists on this architecture.
pub fn number(name: &str) -> Option<i64> {
    all().find(|(_, s)| *s == name).map(|(n, _)| n)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn well_known_numbers() {
        for (nr, n) in [
            (0, "read"),
            (2, "open"),
            (9, "mmap"),
            (41, "socket"),
            (59, "execve"),
            (60, "exit"),
            (158, "arch_prctl"),
            (231, "exit_group"),
            (257, "openat"),
            (262, "newfstatat"),
            (319, "memfd_create"),
            (435, "clone3"),
            (437, "openat2"),
            (446, "landlock_restrict_self"),
            (447, "memfd_secret"),
            (452, "fchmodat2"),
            (462, "mseal"),
        ] {
            assert_eq!(name(nr), Some(n), "{nr}");
            assert_eq!(number(n), Some(nr), "{n}");
        }
        assert_eq!(name(100_000), None);
        assert_eq!(number("no_such_syscall"), None);
    }

    #[test]
    fn numbers_and_names_are_unique() {
        let mut nrs: Vec<i64> = all().map(|(n, _)| n).collect();
        let mut names: Vec<&str> = all().map(|(_, s)| s).collect();
        let len = nrs.len();
        nrs.sort_unstable();
        nrs.dedup();
        names.sort_unstable();
        names.dedup();
        assert_eq!(nrs.len(), len);
        assert_eq!(names.len(), len);
    }
}
