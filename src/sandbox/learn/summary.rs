//! From a learn [`Record`] to a policy: the smallest promise set, and unveil entries collapsed
//! to sensible directories.
//!
//! * **Promises**: `stdio` (never observed: see [`super::BASE`]) plus the smallest set that
//!   contains, for every recorded call, one of the promises that allow it (an exact search over
//!   the candidates; ties go to the promise listed first in `pledge -h`), plus `exec` when the
//!   program exec'd something. Declared promises the program did not use are not kept.
//! * **Unveil**: every recorded access, minus what the implicit unveils of the learned promises
//!   already allow (the program, the dynamic loader's library directories, `stdio`'s device
//!   files, ...). Everything below a named directory (the task, alloc and secrets directories)
//!   becomes one entry on that directory, written `${NOMAD_TASK_DIR}` and so on. The rest is
//!   collapsed bottom-up: a directory at least two levels deep (`/usr/lib`, not `/usr`) through
//!   which [`COLLAPSE_AT`] or more different entries were reached becomes one entry with the
//!   union of their permissions. `/` and top-level directories appear only when the program
//!   read them itself (listed the directory).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{Perm, Record};
use crate::sandbox::promise::{Promise, PromiseSet};
use crate::sandbox::unveil::{self, ProgramFacts, UnveilRule};

/// How many different entries below a directory make it one entry.
pub const COLLAPSE_AT: usize = 3;

/// Most candidate promises searched exactly (beyond: greedy).
const EXACT_SEARCH_MAX: usize = 16;

/// What the summary needs to know besides the record.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// The program as started (its implicit unveils are left out).
    pub facts: ProgramFacts,
    /// The terminal on stdin, if any.
    pub tty: Option<PathBuf>,
    /// Directories written by name, most specific first: `(path, "${NOMAD_TASK_DIR}")`.
    pub named_dirs: Vec<(PathBuf, String)>,
    /// Rules the operator adds to every task (`default_unveil`), left out too.
    pub operator: Vec<UnveilRule>,
}

/// The learned policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    pub promises: PromiseSet,
    /// `PERM:PATH` entries, sorted by path.
    pub unveil: Vec<String>,
    pub warnings: Vec<String>,
}

/// Summarise `rec` (see the module docs).
pub fn summarize(rec: &Record, ctx: &Context) -> Learned {
    let promises = minimal_promises(rec);
    let mut implicit: Vec<UnveilRule> =
        unveil::implicit_rules(promises, &ctx.facts, ctx.tty.clone())
            .into_iter()
            .map(|(r, _)| r)
            .collect();
    implicit.extend(ctx.operator.iter().cloned());
    let implicit: Vec<(PathBuf, Perm, bool)> = implicit
        .into_iter()
        .map(|r| {
            let real = std::fs::canonicalize(&r.path)
                .map(super::observe::proc_self)
                .unwrap_or(r.path.clone());
            let dir = real.is_dir()
                || r.path
                    .as_os_str()
                    .as_encoded_bytes()
                    .starts_with(b"/proc/self/fd");
            (real, r.perms, dir)
        })
        .collect();
    let dirs: BTreeSet<&PathBuf> = rec.dirs.iter().collect();
    let entries: Vec<(PathBuf, Perm, bool)> = rec
        .paths
        .iter()
        .filter_map(|(p, s)| Some((p.clone(), s.parse::<Perm>().ok()?, dirs.contains(p))))
        .filter(|(p, perms, _)| !covered(p, *perms, &implicit))
        .collect();
    let unveil = collapse(entries, &ctx.named_dirs);
    Learned {
        promises,
        unveil,
        warnings: rec.warnings.clone(),
    }
}

/// Is `perms` on `p` allowed by one of `rules` (a directory rule covers what is below it)?
fn covered(p: &Path, perms: Perm, rules: &[(PathBuf, Perm, bool)]) -> bool {
    rules
        .iter()
        .any(|(rp, rperm, dir)| rperm.contains(perms) && (p == rp || (*dir && p.starts_with(rp))))
}

/// The smallest promise set for the recorded calls (see the module docs).
pub fn minimal_promises(rec: &Record) -> PromiseSet {
    let mut set = PromiseSet::parse(super::BASE).unwrap_or_default();
    if rec.exec {
        set.insert(Promise::Exec);
    }
    let calls: Vec<Vec<Promise>> = rec
        .calls
        .values()
        .map(|names| {
            let mut v: Vec<Promise> = names
                .iter()
                .filter_map(|n| Promise::ALL.into_iter().find(|p| p.name() == n))
                .collect();
            v.sort();
            v
        })
        .filter(|v| !v.is_empty())
        .collect();
    for p in cover(&calls, set) {
        set.insert(p);
    }
    set
}

/// The smallest set of promises (beyond `have`) hitting every alternative list in `calls`.
fn cover(calls: &[Vec<Promise>], have: PromiseSet) -> Vec<Promise> {
    let hit = |chosen: &[Promise], alts: &Vec<Promise>| {
        alts.iter().any(|p| have.contains(*p) || chosen.contains(p))
    };
    let mut chosen: Vec<Promise> = Vec::new();
    // Calls only one promise allows decide first.
    for alts in calls {
        if alts.len() == 1 && !hit(&chosen, alts) {
            chosen.push(alts[0]);
        }
    }
    let open: Vec<&Vec<Promise>> = calls.iter().filter(|a| !hit(&chosen, a)).collect();
    if open.is_empty() {
        return chosen;
    }
    let cands: Vec<Promise> = open
        .iter()
        .flat_map(|a| a.iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if cands.len() <= EXACT_SEARCH_MAX {
        for k in 1..=cands.len() {
            if let Some(extra) = first_combination(&cands, k, &|c: &[Promise]| {
                open.iter().all(|a| a.iter().any(|p| c.contains(p)))
            }) {
                chosen.extend(extra);
                return chosen;
            }
        }
    }
    // Greedy: the promise that allows most of what is left, first in order on ties.
    let mut left = open;
    while !left.is_empty() {
        let best = cands
            .iter()
            .copied()
            .max_by_key(|p| {
                (
                    left.iter().filter(|a| a.contains(p)).count(),
                    std::cmp::Reverse(*p),
                )
            })
            .expect("open calls have candidates");
        chosen.push(best);
        left.retain(|a| !a.contains(&best));
    }
    chosen
}

/// The first `k`-subset of `items` (in lexicographic order) for which `ok` holds.
fn first_combination(
    items: &[Promise],
    k: usize,
    ok: &dyn Fn(&[Promise]) -> bool,
) -> Option<Vec<Promise>> {
    let n = items.len();
    let mut idx: Vec<usize> = (0..k).collect();
    loop {
        let c: Vec<Promise> = idx.iter().map(|i| items[*i]).collect();
        if ok(&c) {
            return Some(c);
        }
        // Next combination.
        let mut i = k;
        loop {
            if i == 0 {
                return None;
            }
            i -= 1;
            if idx[i] != i + n - k {
                break;
            }
            if i == 0 && idx[0] == n - k {
                return None;
            }
        }
        idx[i] += 1;
        for j in i + 1..k {
            idx[j] = idx[j - 1] + 1;
        }
    }
}

/// A task's directories as a job writes them, most specific first: its `local` and `secrets`
/// directories, the alloc's shared `alloc` directory and the task's own directory (the parent
/// of `local`), canonicalised as the kernel reports paths.
pub fn task_dirs_by_name(task_dir: &Path) -> Vec<(PathBuf, String)> {
    let canon = |p: PathBuf| std::fs::canonicalize(&p).unwrap_or(p);
    let mut named = vec![
        (
            canon(task_dir.join("local")),
            "${NOMAD_TASK_DIR}".to_string(),
        ),
        (
            canon(task_dir.join("secrets")),
            "${NOMAD_SECRETS_DIR}".to_string(),
        ),
    ];
    if let Some(alloc) = task_dir.parent() {
        named.push((canon(alloc.join("alloc")), "${NOMAD_ALLOC_DIR}".to_string()));
    }
    named.push((
        canon(task_dir.to_path_buf()),
        "${NOMAD_TASK_DIR}/..".to_string(),
    ));
    named
}

/// `path` as a job writes it: below one of `named`, by that name (`${NOMAD_TASK_DIR}/conf`),
/// elsewhere as it is. A job that pastes it keeps working in the next allocation.
pub fn by_name(path: &Path, named: &[(PathBuf, String)]) -> String {
    for (d, name) in named {
        if let Ok(rest) = path.strip_prefix(d) {
            return match rest.as_os_str().is_empty() {
                true => name.clone(),
                false => format!("{name}/{}", rest.display()),
            };
        }
    }
    path.display().to_string()
}

/// Collapse entries into `PERM:PATH` strings (see the module docs).
pub fn collapse(entries: Vec<(PathBuf, Perm, bool)>, named: &[(PathBuf, String)]) -> Vec<String> {
    let mut out: BTreeMap<String, Perm> = BTreeMap::new();
    // path → (perms, is a directory entry)
    let mut rest: BTreeMap<PathBuf, (Perm, bool)> = BTreeMap::new();
    'entry: for (p, perms, dir) in entries {
        for (d, name) in named {
            if p.starts_with(d) {
                let e = out.entry(name.clone()).or_default();
                *e = e.union(perms);
                continue 'entry;
            }
        }
        let e = rest.entry(p).or_insert((Perm::default(), dir));
        e.0 = e.0.union(perms);
        e.1 |= dir;
    }
    // What is below a directory the program creates entries in may not exist when the rerun
    // starts (a rule on a missing path is skipped): it folds into the highest such directory.
    let creating: Vec<PathBuf> = rest
        .iter()
        .filter(|(_, (perm, dir))| *dir && perm.contains(Perm::C))
        .map(|(p, _)| p.clone())
        .collect();
    let below_creating: Vec<(PathBuf, PathBuf)> = rest
        .keys()
        .filter_map(|p| {
            creating
                .iter()
                .filter(|d| p != *d && p.starts_with(d))
                .min_by_key(|d| d.components().count())
                .map(|d| (p.clone(), d.clone()))
        })
        .collect();
    for (p, d) in below_creating {
        if let Some((perm, _)) = rest.remove(&p) {
            let e = rest.entry(d).or_insert((Perm::default(), true));
            e.0 = e.0.union(perm);
        }
    }
    // Bottom-up: deepest candidate directories first.
    let mut ancestors: BTreeSet<(usize, PathBuf)> = BTreeSet::new();
    for p in rest.keys() {
        for a in p.ancestors().skip(1) {
            let depth = a.components().count().saturating_sub(1);
            if depth >= 2 {
                ancestors.insert((depth, a.to_path_buf()));
            }
        }
    }
    for (_, a) in ancestors.into_iter().rev() {
        let below: Vec<PathBuf> = rest
            .keys()
            .filter(|p| p.starts_with(&a) && **p != a)
            .cloned()
            .collect();
        let children: BTreeSet<_> = below
            .iter()
            .filter_map(|p| p.strip_prefix(&a).ok()?.components().next())
            .map(|c| c.as_os_str().to_owned())
            .collect();
        if children.len() < COLLAPSE_AT {
            continue;
        }
        let mut perms = rest.get(&a).map(|e| e.0).unwrap_or_default();
        for p in &below {
            perms = perms.union(rest.remove(p).map(|e| e.0).unwrap_or_default());
        }
        rest.insert(a, (perms, true));
    }
    // A directory entry covers what below it needs no more than it has.
    let dirs: Vec<(PathBuf, Perm)> = rest
        .iter()
        .filter(|(_, (_, d))| *d)
        .map(|(p, (perm, _))| (p.clone(), *perm))
        .collect();
    rest.retain(|p, (perm, _)| {
        !dirs
            .iter()
            .any(|(d, dp)| p != d && p.starts_with(d) && dp.contains(*perm))
    });
    let mut v: Vec<String> = out
        .into_iter()
        .map(|(name, perm)| format!("{perm}:{name}"))
        .collect();
    v.extend(
        rest.into_iter()
            .map(|(p, (perm, _))| format!("{perm}:{}", p.display())),
    );
    v
}

impl Learned {
    fn promise_string(&self) -> String {
        self.promises
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `pledge` flags: `-p 'stdio rpath' -v r:/etc/mime.types ...`.
    pub fn pledge_flags(&self) -> String {
        let mut s = format!("-p {}", shell_quote(&self.promise_string()));
        for u in &self.unveil {
            s += " -v ";
            s += &shell_quote(u);
        }
        s
    }

    /// The job fragment for task `name`.
    pub fn hcl(&self, name: &str) -> String {
        let list: Vec<String> = self.unveil.iter().map(|u| hcl_string(u, true)).collect();
        format!(
            "task {} {{\n  config {{\n    promises = {}\n    unveil   = [{}]\n  }}\n}}\n",
            hcl_string(name, false),
            hcl_string(&self.promise_string(), false),
            list.join(", ")
        )
    }
}

/// A word for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-:=+,@%".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// An HCL string literal; with `keep_nomad_vars`, `${NOMAD_...}` stays an interpolation and
/// every other `${` is escaped.
fn hcl_string(s: &str, keep_nomad_vars: bool) -> String {
    let mut out = String::from("\"");
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        let rest = &s[i..];
        if rest.starts_with("${") {
            if keep_nomad_vars && rest.starts_with("${NOMAD_") {
                out += "${";
            } else {
                out += "$${";
            }
            i += 2;
            continue;
        }
        let ch = rest.chars().next().expect("in bounds");
        match ch {
            '"' => out += "\\\"",
            '\\' => out += "\\\\",
            '\n' => out += "\\n",
            c => out.push(c),
        }
        i += ch.len_utf8();
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(p: &str, perm: &str, dir: bool) -> (PathBuf, Perm, bool) {
        (PathBuf::from(p), perm.parse().unwrap(), dir)
    }

    #[test]
    fn many_files_below_a_deep_directory_collapse_to_it() {
        let v = collapse(
            vec![
                e("/usr/lib/python3.11/os.py", "r", false),
                e("/usr/lib/python3.11/encodings/__init__.py", "r", false),
                e("/usr/lib/python3.11/encodings/aliases.py", "r", false),
                e("/usr/lib/python3.11/encodings/utf_8.py", "r", false),
                e("/usr/lib/python3.11/http/server.py", "r", false),
                e("/etc/mime.types", "r", false),
                e("/etc/passwd", "r", false),
                e("/etc/hosts", "r", false),
            ],
            &[],
        );
        assert_eq!(
            v,
            vec![
                "r:/etc/hosts",
                "r:/etc/mime.types",
                "r:/etc/passwd",
                "r:/usr/lib/python3.11"
            ],
            "top-level /etc stays per file; python's tree is one entry"
        );
    }

    #[test]
    fn never_slash_or_top_level_unless_read() {
        let v = collapse(
            vec![
                e("/a1/x", "r", false),
                e("/a2/y", "r", false),
                e("/a3/z", "r", false),
                e("/usr/a", "r", false),
                e("/usr/b", "r", false),
                e("/usr/c", "r", false),
            ],
            &[],
        );
        assert_eq!(v.len(), 6, "{v:?}");
        // A directory the program listed is kept, and covers what is below it.
        let v = collapse(
            vec![
                e("/", "r", true),
                e("/etc/x", "r", false),
                e("/tmp/y", "w", false),
            ],
            &[],
        );
        assert_eq!(v, vec!["r:/", "w:/tmp/y"]);
    }

    #[test]
    fn task_paths_are_written_with_the_nomad_variables() {
        let named = task_dirs_by_name(Path::new("/nonexistent/alloc-1/web"));
        let n = |p: &str| by_name(Path::new(p), &named);
        assert_eq!(n("/nonexistent/alloc-1/web/local"), "${NOMAD_TASK_DIR}");
        assert_eq!(
            n("/nonexistent/alloc-1/web/local/a/b"),
            "${NOMAD_TASK_DIR}/a/b"
        );
        assert_eq!(
            n("/nonexistent/alloc-1/web/secrets/t"),
            "${NOMAD_SECRETS_DIR}/t"
        );
        assert_eq!(
            n("/nonexistent/alloc-1/alloc/logs"),
            "${NOMAD_ALLOC_DIR}/logs"
        );
        assert_eq!(n("/nonexistent/alloc-1/web"), "${NOMAD_TASK_DIR}/..");
        assert_eq!(
            n("/nonexistent/alloc-1/web/tmp"),
            "${NOMAD_TASK_DIR}/../tmp"
        );
        assert_eq!(
            n("/nonexistent/alloc-1/webby"),
            "/nonexistent/alloc-1/webby"
        );
        assert_eq!(n("/etc/hostname"), "/etc/hostname");
    }

    #[test]
    fn permissions_are_unions_and_named_dirs_are_written_by_name() {
        let named = vec![
            (
                PathBuf::from("/alloc/t/local"),
                "${NOMAD_TASK_DIR}".to_string(),
            ),
            (
                PathBuf::from("/alloc/alloc"),
                "${NOMAD_ALLOC_DIR}".to_string(),
            ),
        ];
        let v = collapse(
            vec![
                e("/alloc/t/local/out.txt", "w", false),
                e("/alloc/t/local", "wc", true),
                e("/alloc/t/local/in.txt", "r", false),
                e("/alloc/alloc/data", "r", false),
                e("/srv/d/a", "r", false),
                e("/srv/d/b", "w", false),
                e("/srv/d/c", "r", false),
            ],
            &named,
        );
        assert_eq!(
            v,
            vec!["r:${NOMAD_ALLOC_DIR}", "rwc:${NOMAD_TASK_DIR}", "rw:/srv/d"]
        );
    }

    #[test]
    fn what_is_below_a_directory_the_program_creates_in_folds_into_it() {
        let v = collapse(
            vec![
                e("/srv/out", "wc", true),
                e("/srv/out/sub", "c", true),
                e("/srv/out/a.txt", "r", false),
                e("/srv/out/sub/b.txt", "r", false),
                e("/srv/other", "r", false),
            ],
            &[],
        );
        assert_eq!(v, vec!["r:/srv/other", "rwc:/srv/out"]);
    }

    fn rec(calls: &[&[&str]]) -> Record {
        let mut r = Record::default();
        for (i, alts) in calls.iter().enumerate() {
            r.calls.insert(
                format!("call{i}"),
                alts.iter().map(|s| s.to_string()).collect(),
            );
        }
        r
    }

    fn names(s: PromiseSet) -> String {
        s.iter().map(|p| p.name()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn promises_are_a_smallest_cover() {
        assert_eq!(names(minimal_promises(&rec(&[]))), "stdio");
        // rpath alone is forced; inet covers both network calls (anet only one).
        let r = rec(&[&["rpath"], &["anet", "inet"], &["inet"]]);
        assert_eq!(names(minimal_promises(&r)), "stdio rpath inet");
        // wpath is forced; two more cover the rest (stdio + 3).
        let r = rec(&[
            &["cpath", "wpath"],
            &["cpath", "dpath"],
            &["cpath", "fattr"],
            &["wpath"],
            &["dpath", "fattr"],
        ]);
        let got = minimal_promises(&r);
        assert_eq!(got.iter().count(), 4, "{}", names(got));
        assert!(got.contains(Promise::Wpath));
        // exec from a later execve; a call no promise allows adds nothing.
        let mut r = rec(&[&[]]);
        r.exec = true;
        assert_eq!(names(minimal_promises(&r)), "stdio exec");
    }

    #[test]
    fn implicit_unveils_are_left_out() {
        let mut r = Record::default();
        r.access("/dev/null".into(), "rw".parse().unwrap(), false);
        r.access("/etc/mime.types".into(), "r".parse().unwrap(), false);
        let ctx = Context::default();
        let l = summarize(&r, &ctx);
        assert_eq!(l.unveil, vec!["r:/etc/mime.types"]);
        assert_eq!(l.pledge_flags(), "-p stdio -v r:/etc/mime.types");
    }

    #[test]
    fn fragments_quote_what_they_must() {
        let l = Learned {
            promises: PromiseSet::parse("stdio rpath inet").unwrap(),
            unveil: vec![
                "r:/etc/mime.types".into(),
                "r:${NOMAD_TASK_DIR}".into(),
                "r:/x/${y}\"".into(),
            ],
            warnings: vec![],
        };
        assert_eq!(
            l.hcl("web"),
            "task \"web\" {\n  config {\n    promises = \"stdio rpath inet\"\n    unveil   = [\"r:/etc/mime.types\", \"r:${NOMAD_TASK_DIR}\", \"r:/x/$${y}\\\"\"]\n  }\n}\n"
        );
        assert_eq!(
            l.pledge_flags(),
            "-p 'stdio rpath inet' -v r:/etc/mime.types -v 'r:${NOMAD_TASK_DIR}' -v 'r:/x/${y}\"'"
        );
    }
}
