//! README.md documents every plugin and task config setting; this keeps the two reference
//! tables and the schemas the plugin really publishes (ConfigSchema, TaskConfigSchema) from
//! drifting apart.

mod common;

use common::pb::base::ConfigSchemaRequest;
use common::pb::drivers::TaskConfigSchemaRequest;
use common::pb::hclspec::spec::Block;
use common::*;

/// The first-column names (`` `name` ``) of the markdown table under `heading`.
fn table_names(readme: &str, heading: &str) -> Vec<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no heading {heading:?}"));
    let mut names: Vec<String> = readme[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .filter_map(|l| {
            let cell = l.split('|').nth(1)?.trim();
            Some(cell.trim_matches('`').to_string())
        })
        .collect();
    names.sort();
    names
}

fn keys(spec: Option<common::pb::hclspec::Spec>) -> Vec<String> {
    match spec.and_then(|s| s.block) {
        Some(Block::Object(o)) => {
            let mut k: Vec<String> = o.attributes.keys().cloned().collect();
            k.sort();
            k
        }
        other => panic!("expected an object spec, got {other:?}"),
    }
}

#[tokio::test]
async fn readme_config_references_match_the_schemas() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let plugin = Plugin::start(&[]).await;
    let plugin_keys = keys(
        plugin
            .base()
            .config_schema(ConfigSchemaRequest {})
            .await
            .unwrap()
            .into_inner()
            .spec,
    );
    let task_keys = keys(
        plugin
            .driver()
            .task_config_schema(TaskConfigSchemaRequest {})
            .await
            .unwrap()
            .into_inner()
            .spec,
    );
    plugin.shutdown().await;
    assert_eq!(
        table_names(&readme, "### Plugin configuration reference"),
        plugin_keys,
        "README's plugin configuration table must list exactly the ConfigSchema attributes"
    );
    assert_eq!(
        table_names(&readme, "### Task configuration reference"),
        task_keys,
        "README's task configuration table must list exactly the TaskConfigSchema attributes"
    );
}

/// The commands in README.md and hack/README.md work as root (no `sudo` on the machine) and as
/// a sudoer: no command starts with a bare `sudo`; the Quick start uses `$SUDO`, set once.
#[test]
fn commands_work_as_root_and_as_a_sudoer() {
    let dir = env!("CARGO_MANIFEST_DIR");
    for file in ["README.md", "hack/README.md"] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        for line in text.lines() {
            let cmd = line.trim_start();
            assert!(
                !cmd.starts_with("sudo ") && !cmd.contains("`sudo "),
                "{file}: a bare sudo fails where there is none (as root): {line}"
            );
        }
    }
    let readme = std::fs::read_to_string(format!("{dir}/README.md")).unwrap();
    let quick = &readme[readme.find("## Quick start").unwrap()..];
    let quick = &quick[..quick[3..].find("\n## ").unwrap()];
    assert!(
        quick.contains("SUDO=$([ \"$(id -u)\" -eq 0 ] || echo sudo)"),
        "{quick}"
    );
    assert!(quick.contains("$SUDO target/release/nomad-pledge-driver run hack/env.hcl"));
    assert!(quick.contains("make test-host") && quick.contains("apt-get"));
    assert_eq!(quick.matches("**What needs root:**").count(), 1);
}
