//! Command-line arguments of `run`.

use std::ffi::OsString;
use std::path::PathBuf;

pub const USAGE: &str = concat!(
    "usage: nomad-pledge-driver run JOB.hcl [--task NAME] [--plugin-config FILE] [--alloc-dir DIR] [--keep]\n",
    "                              [--port-range LO-HI] [--host-volume NAME=PATH[,read_only]]... [-v] [--learn]\n\n",
    "Runs the job file's pledge tasks on this machine through the plugin, as a Nomad client would\n",
    "(needs root, like a Nomad client).\n\n",
    "options:\n",
    options_help!()
);

/// The option list (also in the top-level usage).
pub const OPTIONS_HELP: &str = options_help!();

macro_rules! options_help {
    () => {
        "  --task NAME           run only this pledge task (default: every task with driver = \"pledge\")
  --plugin-config FILE  the plugin's config: an agent file with `plugin \"nomad-pledge-driver\" { config { ... } }`,
                        or just the attributes of the config block
  --alloc-dir DIR       where to create the allocation directory (default: a new directory under /tmp)
  --host-volume NAME=PATH[,read_only]
                        a client host volume (`host_volume \"NAME\" { path = PATH }`) for the job's
                        `volume \"x\" { type = \"host\" source = \"NAME\" }`; repeatable
  --keep                keep the allocation directory (logs, task dirs) afterwards
  --port-range LO-HI    where dynamic `port` blocks get their ports (default: Nomad's 20000-32000)
  --learn               learn mode: run each pledge task with nothing denied (NOT sandboxed),
                        record what its promises and unveil would refuse, and print for each
                        task, on stdout, a `task \"NAME\" { config { promises/unveil } }` fragment
                        to paste into the job (sets the plugin option `allow_learn = true`)
  -v, --verbose         show every plugin log line, not only warnings and errors
  -h, --help            show this help"
    };
}
use options_help;

#[derive(Debug, Default, PartialEq)]
pub struct Args {
    pub job: PathBuf,
    pub task: Option<String>,
    pub plugin_config: Option<PathBuf>,
    pub alloc_dir: Option<PathBuf>,
    pub keep: bool,
    pub verbose: bool,
    /// `--learn`: learn mode for every selected task.
    pub learn: bool,
    /// `-h`/`--help`: print the usage and exit 0 (the other fields are unset).
    pub help: bool,
    /// `--port-range LO-HI`; None = Nomad's default 20000-32000.
    pub port_range: Option<(u16, u16)>,
    /// `--host-volume`, in order given.
    pub host_volumes: Vec<HostVolume>,
}

/// A client host volume given with `--host-volume NAME=PATH[,read_only]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostVolume {
    pub name: String,
    pub path: PathBuf,
    pub read_only: bool,
}

impl HostVolume {
    pub fn parse(text: &str) -> Result<HostVolume, String> {
        let bad = || {
            format!("--host-volume {text:?}: write NAME=PATH or NAME=PATH,read_only, with an absolute PATH")
        };
        let (name, rest) = text.split_once('=').ok_or_else(bad)?;
        let (path, read_only) = match rest.rsplit_once(',') {
            Some((p, "read_only")) => (p, true),
            _ => (rest, false),
        };
        if name.is_empty() || !path.starts_with('/') {
            return Err(bad());
        }
        Ok(HostVolume {
            name: name.to_string(),
            path: PathBuf::from(path),
            read_only,
        })
    }
}

impl Args {
    pub fn parse(raw: &[OsString]) -> Result<Args, String> {
        let mut args = Args::default();
        let mut job = None;
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            let mut value = |flag: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match arg.to_str() {
                Some("--task") => args.task = Some(value("--task")?.to_string_lossy().into_owned()),
                Some("--plugin-config") => {
                    args.plugin_config = Some(value("--plugin-config")?.into())
                }
                Some("--alloc-dir") => args.alloc_dir = Some(value("--alloc-dir")?.into()),
                Some("--host-volume") => {
                    let v = value("--host-volume")?;
                    args.host_volumes
                        .push(HostVolume::parse(&v.to_string_lossy())?);
                }
                Some("--keep") => args.keep = true,
                Some("--learn") => args.learn = true,
                Some("--port-range") => {
                    let v = value("--port-range")?.to_string_lossy().into_owned();
                    let bad = || {
                        format!("--port-range {v:?}: write LO-HI with 1 <= LO <= HI <= 65535, e.g. 20000-32000")
                    };
                    let (lo, hi) = v.split_once('-').ok_or_else(bad)?;
                    let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
                    let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
                    if lo == 0 || lo > hi {
                        return Err(bad());
                    }
                    args.port_range = Some((lo, hi));
                }
                Some("-v") | Some("--verbose") => args.verbose = true,
                Some("-h") | Some("--help") => {
                    return Ok(Args {
                        help: true,
                        ..Args::default()
                    })
                }
                Some(flag) if flag.starts_with('-') => {
                    return Err(format!("unknown option {flag}"))
                }
                _ if job.is_none() => job = Some(PathBuf::from(arg)),
                _ => return Err(format!("unexpected argument {:?}", arg)),
            }
        }
        args.job = job.ok_or("which job file? give its path")?;
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Args, String> {
        Args::parse(&v.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "j.hcl",
            "--task",
            "t",
            "--plugin-config",
            "p.hcl",
            "--keep",
            "-v",
        ])
        .unwrap();
        assert_eq!(a.job, PathBuf::from("j.hcl"));
        assert_eq!(a.task.as_deref(), Some("t"));
        assert_eq!(a.plugin_config, Some(PathBuf::from("p.hcl")));
        assert!(a.keep && a.verbose && !a.learn);
        assert!(parse(&["j.hcl", "--learn"]).unwrap().learn);
        assert!(parse(&[]).unwrap_err().contains("job file"));
        assert!(parse(&["j.hcl", "--task"])
            .unwrap_err()
            .contains("--task needs a value"));
        assert!(parse(&["j.hcl", "--bogus"])
            .unwrap_err()
            .contains("--bogus"));
        assert!(parse(&["a.hcl", "b.hcl"]).unwrap_err().contains("b.hcl"));
        assert!(parse(&["--help"]).unwrap().help && parse(&["j.hcl", "-h"]).unwrap().help);
        let a = parse(&["j.hcl", "--port-range", "30000-30010"]).unwrap();
        assert_eq!(a.port_range, Some((30000, 30010)));
        for bad in ["30010-30000", "0-5", "x", "1-70000"] {
            let e = parse(&["j.hcl", "--port-range", bad]).unwrap_err();
            assert!(e.contains("--port-range"), "{bad}: {e}");
        }
        let a = parse(&[
            "j.hcl",
            "--host-volume",
            "data=/srv/data",
            "--host-volume",
            "ro=/etc,read_only",
        ])
        .unwrap();
        assert_eq!(
            a.host_volumes,
            [
                HostVolume {
                    name: "data".into(),
                    path: "/srv/data".into(),
                    read_only: false
                },
                HostVolume {
                    name: "ro".into(),
                    path: "/etc".into(),
                    read_only: true
                }
            ]
        );
        for bad in ["data", "=/x", "data=rel/path", "data="] {
            let e = parse(&["j.hcl", "--host-volume", bad]).unwrap_err();
            assert!(e.contains("NAME=PATH"), "{bad}: {e}");
        }
    }
}
