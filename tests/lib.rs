//! Shared helpers of twinwire's end-to-end and conformance tests: where the Ditto reference
//! lives and how to read its protocol examples.

use std::path::{Path, PathBuf};

/// The Ditto reference folder: `$TWINWIRE_DITTO_REFERENCE`, else `../shared/ditto-reference`
/// beside the repository.
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("TWINWIRE_DITTO_REFERENCE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ditto-reference"),
    }
}

/// One protocol example file and the JSON messages of its ```json blocks.
pub struct Example {
    /// The path below `protocol-examples/`, e.g. `things/events/attributecreated.md`.
    pub relative: String,
    pub messages: Vec<serde_json::Value>,
}

/// Every file of `protocol-examples`, sorted by path. Panics (a test helper) when the folder
/// or a block cannot be read, so a missing reference fails loudly.
pub fn protocol_examples() -> Vec<Example> {
    let root = reference_dir().join("protocol-examples");
    let mut files = Vec::new();
    collect_markdown(&root, &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no protocol examples under {}",
        root.display()
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let messages = json_blocks(&text)
                .into_iter()
                .map(|b| {
                    serde_json::from_str(&b).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                })
                .collect();
            let relative = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            Example { relative, messages }
        })
        .collect()
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The contents of the ```json blocks of a Markdown text, without Liquid `{% raw %}` tags.
pub fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_start().starts_with("```json") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(&line.replace("{% raw %}", "").replace("{% endraw %}", ""));
                block.push('\n');
            }
        }
    }
    blocks
}
