//! Reading connection files: `${VAR}` and `${VAR:-default}` take environment variables (for
//! secrets; `$${` is a literal `${`), then the YAML is read into the model. Every problem names
//! the file, the line and, where there is one, the field.

use super::model::Connection;
use super::validate::{validate, Problem, Severity};
use std::path::{Path, PathBuf};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A file that was read: its connection (if it parsed) and every problem found.
#[derive(Debug)]
pub struct Loaded {
    pub path: PathBuf,
    pub connection: Option<Connection>,
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// Whether the connection can be used: it parsed and no problem is an error.
    pub fn is_usable(&self) -> bool {
        self.connection.is_some() && !self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Why a directory could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct LoadError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Every `*.yaml` and `*.yml` file of a directory, in name order.
pub fn load_dir(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Loaded>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LoadError {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|source| LoadError {
                path: path.clone(),
                source,
            })?;
            Ok(load_file(&path, &text, env))
        })
        .collect()
}

/// Reads one connection file's text.
pub fn load_file(path: &Path, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    let mut loaded = Loaded {
        path: path.to_owned(),
        connection: None,
        problems: Vec::new(),
    };
    let text = match interpolate(text, env) {
        Ok(text) => text,
        Err(problem) => {
            loaded.problems.push(problem);
            return loaded;
        }
    };
    match yaml_serde::from_str::<Connection>(&text) {
        Ok(connection) => {
            let mut problems = validate(&connection);
            for problem in &mut problems {
                if problem.line.is_none() {
                    problem.line = line_of(&text, &problem.field);
                }
            }
            loaded.problems = problems;
            loaded.connection = Some(connection);
        }
        Err(error) => loaded.problems.push(yaml_problem(&error)),
    }
    loaded
}

fn yaml_problem(error: &yaml_serde::Error) -> Problem {
    let line = error.location().map(|l| l.line());
    let message = error.to_string();
    // serde_yaml appends " at line N column M": the line is reported apart.
    let message = match message.find(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    let hint = if message.contains("unknown field") {
        "Check the spelling against Ditto's connection model (docs/basic-connections.md)."
    } else if message.contains("missing field") {
        "Add the field; Ditto's connection model requires it."
    } else if message.contains("unknown variant") {
        "Use one of the values the message lists."
    } else {
        "Fix the YAML at that line."
    };
    Problem::error("", message, hint).at_line(line)
}

/// `${VAR}` and `${VAR:-default}` from `env`; `$${` stays a literal `${`. Only names of
/// letters, digits and `_` are variables, so `${ thing-json:… }` placeholders pass through.
pub fn interpolate(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, Problem> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(end) = after.find('}') else {
            out.push_str("${");
            rest = after;
            continue;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let is_variable = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !is_variable {
            out.push_str("${");
            rest = after;
            continue;
        }
        match env(name).or_else(|| default.map(str::to_owned)) {
            Some(value) => out.push_str(&value),
            None => {
                let line = text[..text.len() - rest.len() + at].matches('\n').count() + 1;
                return Err(Problem::error(
                    "",
                    format!("the environment variable {name} is not set"),
                    format!("Set {name}, or give a default: ${{{name}:-value}}."),
                )
                .at_line(Some(line)));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The line (1-based) of a field named like `sources[0].authorizationContext[1]`, or of its
/// nearest enclosing field that exists.
pub fn line_of(text: &str, field: &str) -> Option<usize> {
    let wanted = parse_path(field);
    let mut locator = Locator::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut locator, false).ok()?;
    (0..=wanted.len()).rev().find_map(|n| {
        locator
            .lines
            .iter()
            .find(|(p, _)| p == &wanted[..n])
            .map(|(_, l)| *l)
    })
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

fn parse_path(field: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    for part in field.split('.').filter(|p| !p.is_empty()) {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Segment::Key(key.to_owned()));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

/// Records the line of every key and sequence item as the YAML events stream by.
#[derive(Default)]
struct Locator {
    /// The containers open now: a mapping (waiting for a key, or for the value of `key`) or a
    /// sequence (with the index of its next item).
    stack: Vec<Frame>,
    path: Vec<Segment>,
    lines: Vec<(Vec<Segment>, usize)>,
}

enum Frame {
    Mapping { key: Option<String> },
    Sequence { next: usize },
}

impl Locator {
    /// Before a value (scalar or container) in the current container: its path, recorded.
    fn value_starts(&mut self, line: usize) -> bool {
        match self.stack.last_mut() {
            Some(Frame::Mapping { key }) => match key.take() {
                // The value of `key`.
                Some(k) => {
                    self.path.push(Segment::Key(k));
                    true
                }
                // A key.
                None => false,
            },
            Some(Frame::Sequence { next }) => {
                self.path.push(Segment::Index(*next));
                *next += 1;
                self.lines.push((self.path.clone(), line));
                true
            }
            None => false,
        }
    }
}

impl MarkedEventReceiver for Locator {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::Scalar(text, ..) => {
                if matches!(self.stack.last(), Some(Frame::Mapping { key: None })) {
                    let mut path = self.path.clone();
                    path.push(Segment::Key(text.clone()));
                    self.lines.push((path, line));
                    if let Some(Frame::Mapping { key }) = self.stack.last_mut() {
                        *key = Some(text);
                    }
                } else if self.value_starts(line) {
                    self.path.pop();
                }
            }
            Event::MappingStart(..) => {
                let nested = self.value_starts(line);
                if !nested && !self.stack.is_empty() {
                    // A mapping as a key: not in connection files.
                }
                self.stack.push(Frame::Mapping { key: None });
            }
            Event::SequenceStart(..) => {
                self.value_starts(line);
                self.stack.push(Frame::Sequence { next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                if !self.stack.is_empty() {
                    self.path.pop();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "PASSWORD").then(|| "s3cret".to_owned())
    }

    #[test]
    fn environment_variables() {
        assert_eq!(interpolate("p: ${PASSWORD}", &env).unwrap(), "p: s3cret");
        assert_eq!(interpolate("p: ${MISSING:-x}", &env).unwrap(), "p: x");
        assert_eq!(
            interpolate("p: $${PASSWORD}", &env).unwrap(),
            "p: ${PASSWORD}"
        );
        assert_eq!(
            interpolate("a: '${ thing-json:attributes/x }'", &env).unwrap(),
            "a: '${ thing-json:attributes/x }'"
        );
        let error = interpolate("a: 1\nb: ${MISSING}\n", &env).unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(error.message.contains("MISSING"));
    }

    #[test]
    fn lines_of_fields() {
        let text = "id: c\nsources:\n  - addresses:\n      - a\n      - b\n    qos: 1\n  - addresses: [x]\n    authorizationContext:\n      - s:1\n";
        assert_eq!(line_of(text, "id"), Some(1));
        assert_eq!(line_of(text, "sources"), Some(2));
        assert_eq!(line_of(text, "sources[0].addresses[1]"), Some(5));
        assert_eq!(line_of(text, "sources[0].qos"), Some(6));
        assert_eq!(line_of(text, "sources[1].authorizationContext[0]"), Some(9));
        // A field that is not there: its nearest enclosing one.
        assert_eq!(line_of(text, "sources[1].replyTarget.address"), Some(7));
    }
}
