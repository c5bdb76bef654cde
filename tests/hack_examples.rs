//! Static checks of the example jobs in `hack/`: each file parses as HCL, holds one job whose
//! pledge tasks use only the driver's task-config keys, valid promise names and well-formed
//! unveil entries, and is described in `hack/README.md`. Running the examples is the e2e
//! suite's business; this keeps them from rotting in between.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use hcl::expr::TemplateExpr;
use hcl::{Body, Expression};

/// The keys of the driver's task `config {}` block.
const TASK_CONFIG_KEYS: &[&str] = &[
    "command",
    "args",
    "promises",
    "unveil",
    "importance",
    "work_dir",
    "pids_limit",
    "ulimit",
    "oom_score_adj",
];

/// pledge promise names (pledge.com 1.8/1.9; `anet` only exists in 1.9).
const PROMISES: &[&str] = &[
    "stdio",
    "rpath",
    "wpath",
    "cpath",
    "dpath",
    "flock",
    "fattr",
    "inet",
    "unix",
    "dns",
    "tty",
    "recvfd",
    "sendfd",
    "proc",
    "exec",
    "id",
    "unveil",
    "settime",
    "prot_exec",
    "vminfo",
    "tmppath",
    "chown",
    "anet",
];

const IMPORTANCE: &[&str] = &["lowest", "low", "normal", "high", "highest"];

/// The examples the original driver shipped, which ours must keep.
const REQUIRED_EXAMPLES: &[&str] = &[
    "curl",
    "http",
    "env",
    "sleep",
    "cgroup",
    "passwd",
    "ps",
    "resources",
    "ignore",
    "bridge",
];

fn hack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("hack")
}

/// Every job file in hack/ (all `*.hcl` except the agent configuration).
fn job_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(hack_dir())
        .expect("hack/ is readable")
        .map(|e| e.expect("hack/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "hcl"))
        .filter(|p| p.file_name().is_some_and(|n| n != "client.hcl"))
        .collect();
    files.sort();
    files
}

/// The literal text of a string expression (templates included, unevaluated).
fn string_of(expr: &Expression) -> Option<&str> {
    match expr {
        Expression::String(s) => Some(s),
        Expression::TemplateExpr(t) => match t.as_ref() {
            TemplateExpr::QuotedString(s) => Some(s),
            TemplateExpr::Heredoc(h) => Some(&h.template),
        },
        _ => None,
    }
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes().find(|a| a.key() == key).map(|a| a.expr())
}

/// Checks one pledge task's config block; returns the problems found.
fn check_task_config(place: &str, config: &Body) -> Vec<String> {
    let mut problems = Vec::new();
    for a in config.attributes() {
        if !TASK_CONFIG_KEYS.contains(&a.key()) {
            problems.push(format!(
                "{place}: unknown config key `{}` (known: {TASK_CONFIG_KEYS:?})",
                a.key()
            ));
        }
    }
    match attr(config, "command").and_then(string_of) {
        Some(c) if !c.is_empty() => {}
        _ => problems.push(format!(
            "{place}: config.command must be a non-empty string"
        )),
    }
    if let Some(args) = attr(config, "args") {
        match args {
            Expression::Array(items) if items.iter().all(|i| string_of(i).is_some()) => {}
            _ => problems.push(format!("{place}: config.args must be a list of strings")),
        }
    }
    if let Some(p) = attr(config, "promises") {
        match string_of(p) {
            Some(text) => {
                for word in text.split_whitespace() {
                    if !PROMISES.contains(&word.to_ascii_lowercase().as_str()) {
                        problems.push(format!("{place}: unknown promise `{word}`"));
                    }
                }
            }
            None => problems.push(format!("{place}: config.promises must be a string")),
        }
    }
    if let Some(u) = attr(config, "unveil") {
        match u {
            Expression::Array(items) => {
                for item in items {
                    let Some(entry) = string_of(item) else {
                        problems.push(format!("{place}: config.unveil entries must be strings"));
                        continue;
                    };
                    // "PERMS:PATH", or a bare path meaning "r"
                    let (perms, path) = entry.split_once(':').unwrap_or(("r", entry));
                    if perms.is_empty() || !perms.chars().all(|c| "rwxc".contains(c)) {
                        problems.push(format!(
                            "{place}: unveil `{entry}`: permissions must be letters of rwxc"
                        ));
                    }
                    if path.is_empty() {
                        problems.push(format!("{place}: unveil `{entry}`: empty path"));
                    }
                }
            }
            _ => problems.push(format!("{place}: config.unveil must be a list of strings")),
        }
    }
    if let Some(i) = attr(config, "importance") {
        match string_of(i) {
            Some(v) if IMPORTANCE.contains(&v) => {}
            _ => problems.push(format!(
                "{place}: config.importance must be one of {IMPORTANCE:?}"
            )),
        }
    }
    problems
}

/// Checks one job file; returns the job name and the problems found.
fn check_job_file(path: &Path) -> (String, Vec<String>) {
    let file = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = fs::read_to_string(path).expect("job file is readable");
    let body = match hcl::parse(&text) {
        Ok(b) => b,
        Err(e) => return (String::new(), vec![format!("{file}: not valid HCL: {e}")]),
    };
    let jobs: Vec<_> = body.blocks().filter(|b| b.identifier() == "job").collect();
    if jobs.len() != 1 {
        return (
            String::new(),
            vec![format!(
                "{file}: expected one job block, found {}",
                jobs.len()
            )],
        );
    }
    let job = jobs[0];
    let name = job
        .labels()
        .first()
        .map(|l| l.as_str().to_string())
        .unwrap_or_default();
    let mut problems = Vec::new();
    if format!("{name}.hcl") != file {
        problems.push(format!(
            "{file}: job is named `{name}`; name the file after the job"
        ));
    }
    let mut pledge_tasks = 0;
    for group in job.body().blocks().filter(|b| b.identifier() == "group") {
        for task in group.body().blocks().filter(|b| b.identifier() == "task") {
            let tname = task.labels().first().map(|l| l.as_str()).unwrap_or("?");
            let place = format!("{file}: task `{tname}`");
            if attr(task.body(), "driver").and_then(string_of) != Some("pledge") {
                problems.push(format!("{place}: driver must be \"pledge\""));
                continue;
            }
            pledge_tasks += 1;
            let configs: Vec<_> = task
                .body()
                .blocks()
                .filter(|b| b.identifier() == "config")
                .collect();
            match configs.as_slice() {
                [config] => problems.extend(check_task_config(&place, config.body())),
                _ => problems.push(format!("{place}: needs exactly one config block")),
            }
        }
    }
    if pledge_tasks == 0 {
        problems.push(format!("{file}: no pledge task"));
    }
    (name, problems)
}

#[test]
fn every_example_job_is_well_formed() {
    let files = job_files();
    assert!(!files.is_empty(), "no job files in hack/");
    let problems: Vec<String> = files.iter().flat_map(|f| check_job_file(f).1).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_original_examples_are_all_there_and_documented() {
    let names: BTreeSet<String> = job_files().iter().map(|f| check_job_file(f).0).collect();
    let readme = fs::read_to_string(hack_dir().join("README.md")).expect("hack/README.md exists");
    for required in REQUIRED_EXAMPLES {
        assert!(names.contains(*required), "hack/{required}.hcl is missing");
    }
    for name in &names {
        assert!(
            readme.contains(&format!("`{name}.hcl`")),
            "hack/README.md does not describe `{name}.hcl`"
        );
    }
}

#[test]
fn client_config_declares_the_plugin() {
    let text = fs::read_to_string(hack_dir().join("client.hcl")).expect("hack/client.hcl exists");
    let body = hcl::parse(&text).expect("hack/client.hcl is valid HCL");
    assert!(
        attr(&body, "plugin_dir").and_then(string_of).is_some(),
        "client.hcl must set plugin_dir"
    );
    let plugin = body
        .blocks()
        .find(|b| b.identifier() == "plugin")
        .expect("client.hcl needs a plugin block");
    assert_eq!(
        plugin.labels().first().map(|l| l.as_str()),
        Some("nomad-pledge-driver"),
        "the plugin block is keyed by the binary's file name"
    );
    assert!(
        plugin.body().blocks().any(|b| b.identifier() == "config"),
        "the plugin block needs a config block (mandatory since Nomad 1.10)"
    );
}

#[test]
fn a_bad_job_is_reported() {
    // the checker itself must catch mistakes, or the tests above prove nothing
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oops.hcl");
    fs::write(
        &path,
        r#"job "oops" {
  group "g" {
    task "t" {
      driver = "pledge"
      config {
        command  = "cat"
        promises = "stdio thread"
        unveil   = ["rq:/etc"]
        nice     = 3
      }
    }
  }
}
"#,
    )
    .unwrap();
    let (name, problems) = check_job_file(&path);
    assert_eq!(name, "oops");
    let all = problems.join("\n");
    assert!(all.contains("unknown promise `thread`"), "{all}");
    assert!(all.contains("unveil `rq:/etc`"), "{all}");
    assert!(all.contains("unknown config key `nice`"), "{all}");
}

/// The `Expected` cell of `file`'s row in hack/README.md's table.
fn readme_expected(file: &str) -> String {
    let readme = fs::read_to_string(hack_dir().join("README.md")).unwrap();
    let row = readme
        .lines()
        .find(|l| l.starts_with(&format!("| `{file}` |")))
        .unwrap_or_else(|| panic!("hack/README.md has no row for {file}"));
    row.trim_end_matches('|')
        .rsplit('|')
        .next()
        .unwrap()
        .to_string()
}

/// hack/README.md's expected value for each resources.hcl task (`` `task`: `value` ``) is also
/// what the comment above that task in resources.hcl says, so the two cannot disagree again
/// (the cpu.max comment once promised a bandwidth limit while the expected value was
/// `max 100000`).
#[test]
fn resources_comments_agree_with_the_expected_values() {
    let expected = readme_expected("resources.hcl");
    let hcl = fs::read_to_string(hack_dir().join("resources.hcl")).unwrap();
    let lines: Vec<&str> = hcl.lines().collect();
    let mut pairs = Vec::new();
    let mut rest = expected.as_str();
    while let Some(i) = rest.find("`: `") {
        let name = rest[..i].rsplit('`').next().unwrap().to_string();
        let after = &rest[i + 4..];
        let value = after[..after.find('`').unwrap()].to_string();
        pairs.push((name, value));
        rest = after;
    }
    assert_eq!(pairs.len(), 7, "seven tasks documented: {pairs:?}");
    for (task, value) in pairs {
        let at = lines
            .iter()
            .position(|l| l.trim() == format!("task \"{task}\" {{"))
            .unwrap_or_else(|| panic!("resources.hcl has no task {task:?}"));
        let comment: String = lines[..at]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(
            comment.contains(&value),
            "resources.hcl's comment above task {task:?} does not say {value:?}:\n{comment}"
        );
    }
}

/// What the examples' comments and hack/README.md say about the environment and about stops
/// matches the driver: the agent's environment reaches the task (README "Trying a job without
/// Nomad"), and stops never write `cgroup.kill` (README "How tasks run").
#[test]
fn example_docs_agree_with_the_driver() {
    let env_hcl = fs::read_to_string(hack_dir().join("env.hcl")).unwrap();
    assert!(
        !env_hcl.contains("nothing inherited from the agent"),
        "{env_hcl}"
    );
    assert!(env_hcl.contains("agent's own environment"), "{env_hcl}");
    assert!(!readme_expected("env.hcl").is_empty());
    let readme = fs::read_to_string(hack_dir().join("README.md")).unwrap();
    let env_row = readme
        .lines()
        .find(|l| l.starts_with("| `env.hcl` |"))
        .unwrap();
    assert!(!env_row.contains("nothing from the agent"), "{env_row}");
    for (name, text) in [
        (
            "ignore.hcl",
            fs::read_to_string(hack_dir().join("ignore.hcl")).unwrap(),
        ),
        (
            "README.md ignore row",
            readme
                .lines()
                .find(|l| l.starts_with("| `ignore.hcl` |"))
                .unwrap()
                .to_string(),
        ),
    ] {
        for (i, _) in text.match_indices("cgroup.kill") {
            let before = &text[i.saturating_sub(40)..i];
            assert!(
                before.contains("never writes"),
                "{name} says stops use cgroup.kill: {text}"
            );
        }
    }
    let root_readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(root_readme.contains("deliberately does not write `cgroup.kill`"));
}
