//! The pledge-compatible sandbox launcher: promises → seccomp-BPF, unveil → Landlock.

pub mod cli;
