//! Union of the granted rule tables → a plan per syscall → BPF.

use std::collections::BTreeMap;

use super::bpf::{self, Asm, Label, Target};
use super::policy::{self, Check, Cond};
use super::{Action, BpfProgram, FilterOptions, Penalty, SeccompError};
use crate::sandbox::promise::{Promise, PromiseSet};
use crate::sandbox::syscalls;

/// One way a syscall can get a non-default action.
#[derive(Clone, Copy, Debug)]
struct Alt {
    when: Cond,
    action: Action,
}

/// Everything the program decides, before it is turned into instructions.
struct Plan {
    arch: u32,
    default: Action,
    self_pid: i32,
    /// syscall number → alternatives, tried in order.
    syscalls: BTreeMap<u32, Vec<Alt>>,
    enosys: Vec<u32>,
}

fn nr_of(name: &'static str) -> Result<u32, SeccompError> {
    syscalls::number(name)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or(SeccompError::UnknownSyscall { name })
}

fn plan(promises: &PromiseSet, opts: &FilterOptions) -> Result<Plan, SeccompError> {
    let arch = syscalls::AUDIT_ARCH.ok_or(SeccompError::UnsupportedArch {
        arch: std::env::consts::ARCH,
    })?;
    let default = match opts.penalty {
        Penalty::Errno(e) if (1..=4095).contains(&e) => Action::Errno(e as u16),
        Penalty::Errno(errno) => return Err(SeccompError::BadErrno { errno }),
        Penalty::KillProcess => Action::KillProcess,
        Penalty::Log => Action::Log,
    };
    let self_pid = opts.self_pid.unwrap_or_else(|| std::process::id() as i32);

    let mut syscalls: BTreeMap<u32, Vec<Alt>> = BTreeMap::new();
    let mut add = |name: &'static str, when: Cond, action: Action| -> Result<(), SeccompError> {
        syscalls
            .entry(nr_of(name)?)
            .or_default()
            .push(Alt { when, action });
        Ok(())
    };
    for r in policy::ALWAYS {
        add(r.syscall, r.when, Action::Allow)?;
    }
    if promises.is_empty() {
        // pledge(""): exit_group fails with EPERM so libc's _exit falls through to exit.
        add(
            "exit_group",
            Cond::Always,
            Action::Errno(libc::EPERM as u16),
        )?;
    }
    for p in promises.iter() {
        for r in p.rules() {
            let when = if opts.unveiled {
                match unveiled_form(r.syscall, r.when) {
                    Some(when) => when,
                    None => continue,
                }
            } else {
                r.when
            };
            add(r.syscall, when, Action::Allow)?;
        }
    }
    if opts.exec_gate && !promises.contains(Promise::Exec) {
        add("execve", Cond::Always, Action::UserNotif)?;
        add("execveat", Cond::Always, Action::UserNotif)?;
    }
    if opts.exec_gate && !promises.contains(Promise::ProtExec) {
        // The loader of every program exec'd under the gate (also with `exec`) maps libraries.
        add("mmap", policy::MMAP_FILE_EXEC, Action::Allow)?;
    }
    for alts in syscalls.values_mut() {
        // Allowing alternatives first (union semantics); an unconditional allow makes the rest
        // irrelevant. Among the others, order of insertion.
        alts.sort_by_key(|a| a.action != Action::Allow);
        if let Some(i) = alts
            .iter()
            .position(|a| a.when == Cond::Always && a.action == Action::Allow)
        {
            let keep = alts[i];
            alts.clear();
            alts.push(keep);
        }
    }
    let enosys = policy::FORCED_ENOSYS
        .iter()
        .map(|(n, _)| nr_of(n))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        arch,
        default,
        self_pid,
        syscalls,
        enosys,
    })
}

/// A rule's condition when unveil is active: unchanged, replaced by the descriptor form of a
/// path-based metadata call, or `None` (dropped). A conditional rule for a listed syscall is
/// dropped (no such rule has a descriptor form today; a unit test keeps it so).
fn unveiled_form(syscall: &str, when: Cond) -> Option<Cond> {
    match policy::UNVEILED_METADATA
        .iter()
        .find(|(name, _)| *name == syscall)
    {
        None => Some(when),
        Some((_, Some(fd_form))) if when == Cond::Always => Some(*fd_form),
        Some(_) => None,
    }
}

/// Compile the policy for `promises` into a complete seccomp program for the running arch.
pub fn build_filter(
    promises: &PromiseSet,
    opts: &FilterOptions,
) -> Result<BpfProgram, SeccompError> {
    let plan = plan(promises, opts)?;
    let mut a = Asm::new();
    let arch_ok = a.label();
    let not_x32 = a.label();
    let enosys = a.label();
    let main = a.label();

    a.ld(bpf::OFF_ARCH);
    a.jeq(plan.arch, Target::Label(arch_ok), Target::Next);
    a.ret(Action::KillProcess.ret());
    a.bind(arch_ok);
    a.ld(bpf::OFF_NR);
    a.jge(
        syscalls::X32_SYSCALL_BIT,
        Target::Next,
        Target::Label(not_x32),
    );
    a.ret(Action::KillProcess.ret());
    a.bind(not_x32);
    a.jge(policy::ENOSYS_FROM, Target::Label(enosys), Target::Next);
    for nr in &plan.enosys {
        a.jeq(*nr, Target::Label(enosys), Target::Next);
    }
    a.ja(main);
    a.bind(enosys);
    a.ret(Action::Errno(libc::ENOSYS as u16).ret());
    a.bind(main);

    let entries: Vec<(u32, &[Alt])> = plan
        .syscalls
        .iter()
        .map(|(nr, alts)| (*nr, alts.as_slice()))
        .collect();
    emit_dispatch(&mut a, &entries, &plan);
    a.finish()
}

/// Dispatch on the syscall number (in A) by binary search over the sorted numbers, linear
/// comparisons for small groups. Every path ends in a return, so A always still holds the
/// number where a comparison reads it.
fn emit_dispatch(a: &mut Asm, entries: &[(u32, &[Alt])], plan: &Plan) {
    const LINEAR: usize = 6;
    if entries.len() > LINEAR {
        let mid = entries.len() / 2;
        let (left, right) = (a.label(), a.label());
        a.jge(entries[mid].0, Target::Next, Target::Label(left));
        a.ja(right); // `ja` because the left half may be longer than a conditional jump reaches
        a.bind(left);
        emit_dispatch(a, &entries[..mid], plan);
        a.bind(right);
        emit_dispatch(a, &entries[mid..], plan);
        return;
    }
    for (nr, alts) in entries {
        let next = a.label();
        a.jeq(*nr, Target::Next, Target::Label(next));
        for alt in *alts {
            match alt.when {
                Cond::Always => {
                    a.ret(alt.action.ret());
                    break;
                }
                Cond::When { checks, .. } => {
                    let fail = a.label();
                    for c in checks {
                        emit_check(a, c, fail, plan.self_pid);
                    }
                    a.ret(alt.action.ret());
                    a.bind(fail);
                }
            }
        }
        if !matches!(
            alts.last(),
            Some(Alt {
                when: Cond::Always,
                ..
            })
        ) {
            a.ret(plan.default.ret());
        }
        a.bind(next);
    }
    a.ret(plan.default.ret());
}

/// Emit code that falls through when `c` holds and jumps to `fail` otherwise.
fn emit_check(a: &mut Asm, c: &Check, fail: Label, self_pid: i32) {
    let fail_t = Target::Label(fail);
    match *c {
        Check::MaskedEq { arg, mask, value } => {
            a.ld(bpf::off_arg(arg, false));
            if mask != u32::MAX {
                a.and(mask);
            }
            a.jeq(value, Target::Next, fail_t);
        }
        Check::MaskedNe { arg, mask, value } => {
            a.ld(bpf::off_arg(arg, false));
            if mask != u32::MAX {
                a.and(mask);
            }
            a.jeq(value, fail_t, Target::Next);
        }
        Check::MaskedIn { arg, mask, values } => {
            a.ld(bpf::off_arg(arg, false));
            if mask != u32::MAX {
                a.and(mask);
            }
            let pass = a.label();
            let (last, rest) = values.split_last().expect("MaskedIn with no values");
            for v in rest {
                a.jeq(*v, Target::Label(pass), Target::Next);
            }
            a.jeq(*last, Target::Next, fail_t);
            a.bind(pass);
        }
        Check::Null { arg } => {
            a.ld(bpf::off_arg(arg, false));
            a.jeq(0, Target::Next, fail_t);
            a.ld(bpf::off_arg(arg, true));
            a.jeq(0, Target::Next, fail_t);
        }
        Check::SelfPid { arg } => {
            a.ld(bpf::off_arg(arg, false));
            a.jeq(self_pid as u32, Target::Next, fail_t);
        }
        Check::SelfOrZero { arg } => {
            let pass = a.label();
            a.ld(bpf::off_arg(arg, false));
            a.jeq(0, Target::Label(pass), Target::Next);
            a.jeq(self_pid as u32, Target::Next, fail_t);
            a.bind(pass);
        }
    }
}

#[cfg(test)]
/// What the filter built from (`promises`, `opts`) does with one syscall, computed in Rust from
/// the same plan (the reference the compiled program is tested against).
pub fn decide(
    promises: &PromiseSet,
    opts: &FilterOptions,
    arch: u32,
    nr: u32,
    args: &[u64; 6],
) -> Result<Action, SeccompError> {
    Ok(plan(promises, opts)?.decide(arch, nr, args))
}

impl Plan {
    #[cfg(test)]
    fn decide(&self, arch: u32, nr: u32, args: &[u64; 6]) -> Action {
        if arch != self.arch || nr & syscalls::X32_SYSCALL_BIT != 0 {
            return Action::KillProcess;
        }
        if nr >= policy::ENOSYS_FROM || self.enosys.contains(&nr) {
            return Action::Errno(libc::ENOSYS as u16);
        }
        self.syscalls
            .get(&nr)
            .and_then(|alts| {
                alts.iter()
                    .find(|alt| alt.when.holds(args, Some(self.self_pid)))
            })
            .map_or(self.default, |alt| alt.action)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::sandbox::seccomp::bpf::{run, SeccompData};

    const X86_64: u32 = 0xC000_003E;

    fn set(s: &str) -> PromiseSet {
        PromiseSet::parse(s).unwrap()
    }

    fn opts() -> FilterOptions {
        FilterOptions {
            self_pid: Some(4242),
            ..Default::default()
        }
    }

    /// Interesting argument values: flags, modes, families, pids, NULL/non-NULL pointers.
    fn arg_values() -> Vec<u64> {
        let mut v = vec![
            0,
            1,
            2,
            3,
            5,
            6,
            10,
            17,
            0o100,
            0o1000,
            0o101,
            0o1101,
            0o2,
            0o20200000,
            0o20200002,
            0o4644,
            0o644,
            0x5401,
            0x5412,
            0x5413,
            0x541B,
            0x8905,
            0x10F00,
            0x30F00,
            0x12F00,
            0x1200011,
            4242,
            4243,
            0x0000_0001_0000_0000,
            0xffff_ffff,
            u64::MAX,
            0x22,
            0x802,
            0x5,
            0x7,
            0x4,
            0x80001,
            38,
            4,
        ];
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The compiled program returns exactly what `decide` says, for every syscall number and a
    /// spread of arguments, for several promise sets and options. This checks the assembler,
    /// jump offsets and check emission against the plan.
    #[test]
    fn compiled_program_agrees_with_the_plan() {
        let sets = [
            "",
            "stdio",
            "stdio rpath",
            "stdio rpath wpath cpath",
            "stdio inet dns",
            "stdio unix tty proc",
            "stdio prot_exec exec",
            "anet flock fattr chown id settime unveil tmppath vminfo sendfd recvfd dpath",
        ];
        let option_sets = [
            opts(),
            FilterOptions {
                exec_gate: true,
                ..opts()
            },
            FilterOptions {
                penalty: Penalty::KillProcess,
                ..opts()
            },
            FilterOptions {
                penalty: Penalty::Log,
                exec_gate: true,
                ..opts()
            },
            FilterOptions {
                unveiled: true,
                exec_gate: true,
                ..opts()
            },
        ];
        let vals = arg_values();
        let mut checked = 0u64;
        let conditional_nrs: Vec<u32> = Promise::ALL
            .iter()
            .flat_map(|p| p.rules())
            .filter(|r| r.when != Cond::Always)
            .map(|r| syscalls::number(r.syscall).unwrap() as u32)
            .chain([9]) // mmap: the exec gate's rule
            .collect();
        for s in sets {
            let ps = set(s);
            for o in &option_sets {
                let prog = build_filter(&ps, o).unwrap();
                let reference = plan(&ps, o).unwrap();
                for nr in (0u32..480).chain([0x4000_0000, 0x4000_0001]) {
                    // Arguments matter only for syscalls some rule conditions; keep the
                    // product small for the others.
                    let conditional = conditional_nrs.contains(&nr);
                    let combos: Vec<[u64; 6]> = if conditional {
                        let mut c = Vec::new();
                        for (i, a) in vals.iter().enumerate() {
                            for (j, b) in vals.iter().enumerate() {
                                let x = vals[(i * 7 + j * 3) % vals.len()];
                                let y = vals[(i + j * 5) % vals.len()];
                                if (i + j) % 2 == 0 {
                                    c.push([*a, *b, x, y, vals[(i * j) % vals.len()], 0]);
                                } else {
                                    c.push([y, *a, *b, x, 0, vals[(i + j) % vals.len()]]);
                                }
                            }
                        }
                        c
                    } else {
                        vec![[0; 6], [1, 2, 3, 4, 5, 6]]
                    };
                    for args in combos {
                        let data = SeccompData {
                            nr: nr as i32,
                            arch: X86_64,
                            instruction_pointer: 0,
                            args,
                        };
                        let got = Action::from_ret(run(&prog, &data).unwrap());
                        let want = reference.decide(X86_64, nr, &args);
                        assert_eq!(got, Some(want), "set `{s}` {o:?} nr {nr} args {args:x?}");
                        checked += 1;
                    }
                }
                // foreign arch
                let data = SeccompData {
                    nr: 0,
                    arch: 0x4000_0003, // AUDIT_ARCH_I386
                    ..Default::default()
                };
                assert_eq!(
                    Action::from_ret(run(&prog, &data).unwrap()),
                    Some(Action::KillProcess)
                );
            }
        }
        assert!(checked > 100_000, "{checked}");
    }

    /// With unveil active, metadata changes keep only their descriptor forms (issue 12 item 5);
    /// without, they are pledge.com's.
    #[test]
    fn unveil_confines_metadata_changes_to_descriptors() {
        let ps = set("stdio rpath wpath fattr chown");
        let u = FilterOptions {
            unveiled: true,
            ..opts()
        };
        let eperm = Action::Errno(libc::EPERM as u16);
        let d = |o: &FilterOptions, name: &str, args: [u64; 6]| {
            let nr = syscalls::number(name).unwrap() as u32;
            decide(&ps, o, X86_64, nr, &args).unwrap()
        };
        let path = 0x7fff_0000_1000u64;
        for (name, args) in [
            ("chmod", [path, 0o644, 0, 0, 0, 0]),
            ("fchmodat", [3, path, 0o644, 0, 0, 0]),
            ("chown", [path, 0, 0, 0, 0, 0]),
            ("lchown", [path, 0, 0, 0, 0, 0]),
            ("fchownat", [3, path, 0, 0, 0x1000, 0]),
            ("utime", [path, 0, 0, 0, 0, 0]),
            ("utimes", [path, 0, 0, 0, 0, 0]),
            ("futimesat", [3, path, 0, 0, 0, 0]),
            ("utimensat", [3, path, 0, 0, 0, 0]),
        ] {
            assert_eq!(d(&u, name, args), eperm, "{name} with unveil");
            assert_eq!(
                d(&opts(), name, args),
                Action::Allow,
                "{name} without unveil"
            );
        }
        for (name, args) in [
            ("fchmod", [3, 0o644, 0, 0, 0, 0]),
            ("fchown", [3, 0, 0, 0, 0, 0]),
            ("utimensat", [3, 0, 0, 0, 0, 0]),
            ("futimesat", [3, 0, 0, 0, 0, 0]),
        ] {
            assert_eq!(d(&u, name, args), Action::Allow, "{name} with unveil");
        }
        // setid bits stay refused on the descriptor form too.
        assert_eq!(d(&u, "fchmod", [3, 0o4755, 0, 0, 0, 0]), eperm);
        // A path in the high half only is still a path.
        assert_eq!(d(&u, "utimensat", [3, 1 << 32, 0, 0, 0, 0]), eperm);
    }

    /// Every descriptor form in UNVEILED_METADATA replaces unconditional rules only (a
    /// conditional rule would lose its condition).
    #[test]
    fn unveiled_metadata_replacements_only_replace_unconditional_rules() {
        for (name, fd_form) in policy::UNVEILED_METADATA {
            assert!(syscalls::number(name).is_some(), "{name}");
            if fd_form.is_none() {
                continue;
            }
            for p in Promise::ALL {
                for r in p.rules().iter().filter(|r| r.syscall == *name) {
                    assert_eq!(r.when, Cond::Always, "{p} {name}");
                }
            }
        }
    }

    #[test]
    fn every_promise_set_of_all_promises_compiles_within_limits() {
        for o in [
            opts(),
            FilterOptions {
                exec_gate: true,
                ..opts()
            },
        ] {
            let prog = build_filter(&PromiseSet::all(), &o).unwrap();
            assert!(prog.len() < 1500, "{}", prog.len());
            for p in Promise::ALL {
                build_filter(&PromiseSet::empty().with(p), &o).unwrap();
                build_filter(&PromiseSet::all().without(p), &o).unwrap();
            }
        }
    }

    /// The binary-search dispatch keeps every syscall's path short (a linear chain over the
    /// ~200 syscalls of a typical set would take up to ~200 comparisons for the last ones).
    #[test]
    fn dispatch_paths_are_short() {
        let ps = set("stdio rpath wpath cpath inet dns proc tty");
        let prog = build_filter(&ps, &opts()).unwrap();
        let mut worst = (0, 0);
        for nr in 0..460 {
            let data = SeccompData {
                nr,
                arch: X86_64,
                ..Default::default()
            };
            let (_, steps) = crate::sandbox::seccomp::bpf::run_counting(&prog, &data).unwrap();
            worst = worst.max((steps, nr));
        }
        eprintln!("worst path: {} instructions (nr {})", worst.0, worst.1);
        assert!(worst.0 <= 64, "{worst:?}");
    }

    #[test]
    fn bad_errno_penalty_is_refused() {
        for errno in [0, -1, 4096] {
            let o = FilterOptions {
                penalty: Penalty::Errno(errno),
                ..opts()
            };
            let err = build_filter(&set("stdio"), &o).unwrap_err();
            assert!(matches!(err, SeccompError::BadErrno { .. }), "{err}");
        }
    }

    fn d(s: &str, o: &FilterOptions, name: &str, args: [u64; 6]) -> Action {
        let nr = syscalls::number(name).unwrap() as u32;
        decide(&set(s), o, X86_64, nr, &args).unwrap()
    }

    const EPERM: Action = Action::Errno(libc::EPERM as u16);
    const ENOSYS: Action = Action::Errno(libc::ENOSYS as u16);

    #[test]
    fn plan_matches_the_documented_policy() {
        let o = opts();
        // always / empty set
        assert_eq!(d("", &o, "exit", [0; 6]), Action::Allow);
        assert_eq!(d("", &o, "arch_prctl", [0; 6]), Action::Allow);
        assert_eq!(d("", &o, "exit_group", [0; 6]), EPERM);
        let k = FilterOptions {
            penalty: Penalty::KillProcess,
            ..o
        };
        assert_eq!(d("", &k, "exit_group", [0; 6]), EPERM);
        assert_eq!(d("", &k, "write", [0; 6]), Action::KillProcess);
        // forced ENOSYS regardless of promises and penalty
        for s in ["memfd_create", "openat2", "clone3", "fchmodat2", "mseal"] {
            assert_eq!(d("stdio rpath proc exec", &k, s, [0; 6]), ENOSYS, "{s}");
        }
        // open flags
        let rdonly = [0, 0, 0, 0, 0, 0];
        let wr_creat = [0, 0o101, 0o644, 0, 0, 0];
        assert_eq!(d("rpath", &o, "open", rdonly), Action::Allow);
        assert_eq!(d("rpath", &o, "open", wr_creat), EPERM);
        assert_eq!(d("rpath", &o, "openat", [0, 0, 0o1000, 0, 0, 0]), EPERM);
        assert_eq!(
            d("wpath", &o, "openat", [0, 0, 0o2 | 0o1000, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("wpath", &o, "openat", [0, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            d("cpath", &o, "openat", [0, 0, 0o2 | 0o1000, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("cpath", &o, "openat", [0, 0, 0o101, 0o4644, 0, 0]), EPERM);
        assert_eq!(
            d("cpath", &o, "openat", [0, 0, 0o101, 0o644, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("dns", &o, "openat", [0, 0, 0, 0, 0, 0]), Action::Allow);
        // mmap / mprotect
        let anon_rx = [0, 4096, 5, 0x22, u64::MAX, 0];
        let file_rx = [0, 4096, 5, 0x2, 3, 0];
        let file_rwx = [0, 4096, 7, 0x2, 3, 0];
        assert_eq!(d("stdio", &o, "mmap", anon_rx), EPERM);
        assert_eq!(d("stdio", &o, "mmap", file_rx), EPERM);
        assert_eq!(d("stdio prot_exec", &o, "mmap", anon_rx), Action::Allow);
        let g = FilterOptions {
            exec_gate: true,
            ..o
        };
        assert_eq!(d("stdio", &g, "mmap", file_rx), Action::Allow);
        assert_eq!(d("stdio", &g, "mmap", file_rwx), EPERM);
        assert_eq!(d("stdio", &g, "mmap", anon_rx), EPERM);
        assert_eq!(d("stdio", &g, "mprotect", [0, 4096, 5, 0, 0, 0]), EPERM);
        assert_eq!(d("stdio", &g, "execve", [0; 6]), Action::UserNotif);
        assert_eq!(d("stdio exec", &g, "execve", [0; 6]), Action::Allow);
        assert_eq!(d("stdio", &o, "execve", [0; 6]), EPERM);
        // sockets
        assert_eq!(d("inet", &o, "socket", [2, 1, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(
            d("inet", &o, "socket", [10, 0x80802, 17, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("unix", &o, "socket", [2, 1, 0, 0, 0, 0]), EPERM);
        assert_eq!(d("unix", &o, "socket", [1, 1, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("unix", &o, "socket", [1, 5, 0, 0, 0, 0]), EPERM); // SEQPACKET
        assert_eq!(d("anet", &o, "socket", [2, 2, 0, 0, 0, 0]), EPERM); // UDP
        assert_eq!(d("anet", &o, "connect", [0; 6]), EPERM);
        assert_eq!(d("inet", &o, "socket", [17, 3, 0, 0, 0, 0]), EPERM); // AF_PACKET
                                                                         // sendto NULL address (full 64 bits)
        assert_eq!(d("stdio", &o, "sendto", [1, 0, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("stdio", &o, "sendto", [1, 0, 0, 0, 1 << 32, 0]), EPERM);
        // kill self only
        assert_eq!(d("stdio", &o, "kill", [4242, 9, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("stdio", &o, "kill", [1, 9, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            d("stdio proc", &o, "kill", [1, 9, 0, 0, 0, 0]),
            Action::Allow
        );
        // clone
        assert_eq!(
            d("stdio", &o, "clone", [0x3d0f00, 0, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("stdio", &o, "clone", [0x1200011, 0, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            d("stdio proc", &o, "clone", [0x1200011, 0, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(
            d("stdio proc", &o, "clone", [0x20011, 0, 0, 0, 0, 0]),
            EPERM
        );
        // ioctl
        assert_eq!(d("stdio", &o, "ioctl", [0, 0x5413, 0, 0, 0, 0]), EPERM);
        assert_eq!(
            d("stdio tty", &o, "ioctl", [0, 0x5413, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("stdio tty", &o, "ioctl", [0, 0x5412, 0, 0, 0, 0]), EPERM); // TIOCSTI
                                                                                 // chmod setid bits
        assert_eq!(
            d("fattr", &o, "fchmod", [0, 0o755, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("fattr", &o, "fchmod", [0, 0o4755, 0, 0, 0, 0]), EPERM);
        // fcntl
        assert_eq!(
            d("stdio", &o, "fcntl", [0, 1030, 0, 0, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("stdio", &o, "fcntl", [0, 6, 0, 0, 0, 0]), EPERM);
        assert_eq!(d("flock", &o, "fcntl", [0, 37, 0, 0, 0, 0]), Action::Allow);
        // prctl, prlimit64
        assert_eq!(d("stdio", &o, "prctl", [38, 1, 0, 0, 0, 0]), Action::Allow);
        assert_eq!(d("stdio", &o, "prctl", [1, 9, 0, 0, 0, 0]), EPERM); // PDEATHSIG
        assert_eq!(
            d("stdio", &o, "prlimit64", [0, 7, 0, 1, 0, 0]),
            Action::Allow
        );
        assert_eq!(d("stdio", &o, "prlimit64", [0, 7, 1, 0, 0, 0]), EPERM);
        // nowhere
        assert_eq!(d("stdio rpath proc", &o, "waitid", [0; 6]), EPERM);
        assert_eq!(d("stdio", &o, "ptrace", [0; 6]), EPERM);
        assert_eq!(
            d(
                "stdio",
                &FilterOptions {
                    penalty: Penalty::Log,
                    ..o
                },
                "ptrace",
                [0; 6]
            ),
            Action::Log
        );
    }
}
