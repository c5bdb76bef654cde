//! The pledge-compatible sandbox launcher: promises → seccomp-BPF, unveil → Landlock.

pub mod cli;
pub mod promise;
pub mod seccomp;
pub mod syscalls;
