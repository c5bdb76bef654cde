//! The launcher's command line, rendered from a [`Policy`]: the one place that writes pledge
//! flags, for the built-in launcher and for pledge.com alike.

use std::ffi::OsString;
use std::path::Path;

use super::{Launcher, Policy};
use crate::sandbox::unveil::port_list;

impl Policy {
    /// `LAUNCHER [--unveil-best-effort] [-V] -p PROMISES [--operator-unveil PERM:PATH]...
    /// [-v PERM:PATH]... -- COMMAND ARGS...`,
    /// where LAUNCHER is `self_exe pledge` (built-in) or the external executable. `-p` is always
    /// given (the empty set is `-p ''`, not pledge's default), and every rule is written
    /// `PERM:PATH`, so a path with a `:` keeps it (pledge splits at the first colon).
    pub fn launcher_argv(&self, self_exe: &Path, command: &str, args: &[String]) -> Vec<OsString> {
        let mut argv: Vec<OsString> = match &self.launcher {
            Launcher::BuiltIn { unveil_best_effort } => {
                let mut v = vec![self_exe.as_os_str().to_owned(), "pledge".into()];
                if *unveil_best_effort {
                    v.push("--unveil-best-effort".into());
                }
                v
            }
            // pledge.com has no such switch: it never refuses rules it cannot enforce.
            Launcher::External(path) => vec![path.as_os_str().to_owned()],
        };
        if self.no_unveil {
            argv.push("-V".into());
        }
        argv.push("-p".into());
        argv.push(self.promises.to_string().into());
        let entry = |rule: &super::UnveilRule| {
            let mut entry = OsString::from(rule.perms.to_string());
            entry.push(":");
            entry.push(rule.path.as_os_str());
            entry
        };
        // The built-in launcher shows the operator's rules as such (`-T unveil`, `--explain`);
        // pledge.com only knows `-v`.
        let operator_flag = if self.launcher.is_built_in() {
            "--operator-unveil"
        } else {
            "-v"
        };
        for rule in &self.operator_unveil {
            argv.push(operator_flag.into());
            argv.push(entry(rule));
        }
        for rule in &self.unveil {
            argv.push("-v".into());
            argv.push(entry(rule));
        }
        // Landlock port rules: built-in launcher only (pledge.com has none; StartTask reports
        // them as not enforced).
        if self.launcher.is_built_in() {
            for (flag, list) in [
                ("--tcp-bind", &self.tcp_bind),
                ("--tcp-connect", &self.tcp_connect),
            ] {
                if let Some(ports) = list {
                    argv.push(flag.into());
                    argv.push(port_list(ports).into());
                }
            }
        }
        argv.push("--".into());
        argv.push(command.into());
        argv.extend(args.iter().map(OsString::from));
        argv
    }

    /// How many leading argv entries [`Policy::launcher_argv`] spends on the launcher itself.
    #[cfg(test)]
    fn launcher_prefix_len(&self) -> usize {
        match self.launcher {
            Launcher::BuiltIn { .. } => 2,
            Launcher::External(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{PromiseSet, UnveilRule};
    use super::*;
    use crate::sandbox::cli::{self, Parsed};

    const SELF_EXE: &str = "/usr/local/bin/nomad-pledge-driver";

    fn policy(promises: &str, unveil: &[&str], launcher: Launcher) -> Policy {
        Policy::new(
            PromiseSet::parse(promises).unwrap(),
            unveil.iter().map(|u| u.parse().unwrap()).collect(),
            launcher,
        )
        .unwrap()
    }

    /// Renders `p`, parses the result with our own `pledge` parser and checks that it says the
    /// same thing as the policy.
    fn round_trip(p: &Policy, command: &str, args: &[&str]) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let argv = p.launcher_argv(Path::new(SELF_EXE), command, &args);
        match p.launcher() {
            Launcher::BuiltIn { .. } => assert_eq!(argv[..2], [SELF_EXE, "pledge"]),
            Launcher::External(path) => assert_eq!(argv[0], path.as_os_str()),
        }
        let rest = &argv[p.launcher_prefix_len()..];
        let o = match cli::parse("pledge", rest) {
            Parsed::Run(o) => o,
            other => panic!("{argv:?} does not parse: {other:?}"),
        };
        let promises = PromiseSet::parse(o.promises.as_deref().expect("-p is always given"));
        assert_eq!(promises.unwrap(), p.promises(), "{argv:?}");
        let parse = |list: &[OsString]| -> Vec<UnveilRule> {
            list.iter()
                .map(|v| UnveilRule::parse_os(v).unwrap())
                .collect()
        };
        let (operator, unveil) = if p.launcher().is_built_in() {
            (parse(&o.operator_unveils), parse(&o.unveils))
        } else {
            // pledge.com gets the operator's rules first, as plain `-v`.
            let all = parse(&o.unveils);
            let n = p.operator_unveil().len();
            (all[..n].to_vec(), all[n..].to_vec())
        };
        assert_eq!(operator, p.operator_unveil(), "{argv:?}");
        assert_eq!(unveil, p.unveil(), "{argv:?}");
        assert_eq!(o.no_unveil, p.no_unveil(), "{argv:?}");
        if p.launcher().is_built_in() {
            assert_eq!(o.tcp_bind.as_deref(), p.tcp_bind(), "{argv:?}");
            assert_eq!(o.tcp_connect.as_deref(), p.tcp_connect(), "{argv:?}");
        } else {
            assert_eq!((&o.tcp_bind, &o.tcp_connect), (&None, &None), "{argv:?}");
        }
        let best_effort = matches!(
            p.launcher(),
            Launcher::BuiltIn {
                unveil_best_effort: true
            }
        );
        assert_eq!(o.unveil_best_effort, best_effort, "{argv:?}");
        let mut want = vec![OsString::from(command)];
        want.extend(args.iter().map(OsString::from));
        assert_eq!(o.command, want, "{argv:?}");
        // Nothing else is switched on.
        let plain = cli::Options {
            promises: o.promises.clone(),
            unveils: o.unveils.clone(),
            operator_unveils: o.operator_unveils.clone(),
            tcp_bind: o.tcp_bind.clone(),
            tcp_connect: o.tcp_connect.clone(),
            no_unveil: o.no_unveil,
            unveil_best_effort: o.unveil_best_effort,
            command: o.command.clone(),
            ..Default::default()
        };
        assert_eq!(*o, plain, "{argv:?}");
    }

    #[test]
    fn rendered_argv_parses_back_to_the_same_policy() {
        let built_in = Launcher::default();
        let best_effort = Launcher::BuiltIn {
            unveil_best_effort: true,
        };
        let external = Launcher::External("/opt/pledge-1.9.com".into());
        for launcher in [built_in, best_effort, external] {
            let l = || launcher.clone();
            round_trip(
                &policy("stdio rpath", &["r:/etc", "rwc:/tmp"], l()),
                "/bin/cat",
                &["-n", "/etc/hostname"],
            );
            // Odd paths: colons (split at the first one), spaces, a leading dash after the colon.
            round_trip(
                &policy(
                    "stdio rpath wpath cpath",
                    &[
                        "rw:/alloc/a:b",
                        "x:/opt/my tools/bin",
                        "c:/tmp/-v",
                        "r:/a::",
                    ],
                    l(),
                ),
                "/opt/my tools/bin/run",
                &["--", "-p", "x"],
            );
            // The empty set is `-p ''`, not pledge's default.
            round_trip(&policy("", &[], l()), "/bin/true", &[]);
            // No unveil rules at all.
            round_trip(&policy("stdio inet dns", &[], l()), "curl", &["-s"]);
            // The operator's `default_unveil` rules.
            round_trip(
                &policy("stdio rpath", &["r:/etc"], l())
                    .with_operator_unveil(vec![
                        "r:/usr/share/zoneinfo".parse().unwrap(),
                        "r:/etc/ssl/x:y".parse().unwrap(),
                    ])
                    .unwrap(),
                "/bin/date",
                &[],
            );
            // Port allow-lists: allocated ports (an empty list = no port), connect ranges.
            round_trip(
                &policy("stdio inet", &[], l())
                    .with_tcp_bind(vec![
                        "8080".parse().unwrap(),
                        "20000-20001".parse().unwrap(),
                    ])
                    .with_tcp_connect(vec![]),
                "python3",
                &[],
            );
            round_trip(
                &policy("stdio inet", &[], l()).with_tcp_bind(vec![]),
                "python3",
                &[],
            );
            // -V, with and without rules.
            round_trip(
                &policy("stdio", &[], l()).without_unveil(),
                "/bin/true",
                &[],
            );
            round_trip(
                &policy("stdio rpath", &["r:/etc"], l()).without_unveil(),
                "-dash-command",
                &["-V"],
            );
        }
    }

    #[test]
    fn argv_has_pledge_com_form() {
        let p = policy(
            "rpath STDIO",
            &["r:/etc", "rwc:/tmp"],
            Launcher::External("/opt/pledge.com".into()),
        );
        let args = ["-n".to_string(), "/etc/hostname".to_string()];
        assert_eq!(
            p.launcher_argv(Path::new(SELF_EXE), "/bin/cat", &args),
            [
                "/opt/pledge.com",
                "-p",
                "stdio rpath",
                "-v",
                "r:/etc",
                "-v",
                "rwc:/tmp",
                "--",
                "/bin/cat",
                "-n",
                "/etc/hostname"
            ]
        );
        let p = policy(
            "stdio",
            &[],
            Launcher::BuiltIn {
                unveil_best_effort: true,
            },
        );
        assert_eq!(
            p.launcher_argv(Path::new(SELF_EXE), "true", &[]),
            [
                SELF_EXE,
                "pledge",
                "--unveil-best-effort",
                "-p",
                "stdio",
                "--",
                "true"
            ]
        );
    }
}
