//! The pledge-compatible sandbox launcher: promises → seccomp-BPF, unveil → Landlock.

pub mod caps;
pub mod cli;
mod exe;
mod gate;
pub mod launch;
pub mod prepared;
pub mod promise;
pub mod seccomp;
mod sys;
pub mod syscalls;
pub mod unveil;
