//! The pledge-compatible sandbox launcher: promises → seccomp-BPF, unveil → Landlock.

pub mod caps;
pub mod cli;
pub(crate) mod exe;
mod gate;
pub mod launch;
pub mod learn;
pub mod prepared;
mod procmem;
pub mod promise;
pub mod seccomp;
pub(crate) mod sys;
pub mod syscalls;
pub mod unmatched;
pub mod unveil;

#[cfg(test)]
mod error_tests;
