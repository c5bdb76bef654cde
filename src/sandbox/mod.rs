//! The pledge-compatible sandbox launcher: promises → seccomp-BPF, unveil → Landlock.

pub mod cli;
pub(crate) mod exe;
mod gate;
pub mod launch;
pub mod promise;
pub mod seccomp;
mod sys;
pub mod syscalls;
pub mod unveil;
