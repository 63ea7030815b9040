//! `twinwire protocol check`: reads Ditto Protocol messages from files or stdin and answers one
//! line per message, in input order: `ok <signal-type>` (with the error code of an error
//! response) or `error <status> <error-code>: <message>`.

use crate::input::{messages, sniff_format, Item};
use std::fmt;
use std::io::{self, BufRead, Write};
use std::path::Path;
use twinwire_protocol::signal::SignalKind;
use twinwire_protocol::{DittoError, Envelope, ProtocolError};

/// The answer for one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A valid message: its signal type, and the Ditto error code an error response carries.
    Valid {
        signal: String,
        error_code: Option<String>,
    },
    /// An invalid message and why, as a Ditto error.
    Invalid(DittoError),
}

impl Verdict {
    pub fn is_valid(&self) -> bool {
        matches!(self, Verdict::Valid { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Valid {
                signal,
                error_code: None,
            } => write!(f, "ok {signal}"),
            Verdict::Valid {
                signal,
                error_code: Some(code),
            } => write!(f, "ok {signal} {code}"),
            Verdict::Invalid(e) => {
                // One line per message, whatever the message text holds.
                let message: String = e
                    .message_or_code()
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                write!(f, "error {} {}: {}", e.status, e.code(), message)
            }
        }
    }
}

/// Checks one message's bytes.
pub fn check_message(bytes: &[u8], max_bytes: usize) -> Verdict {
    match Envelope::from_slice_limited(bytes, max_bytes).and_then(|env| Ok((env.signal()?, env))) {
        Ok((signal, env)) => {
            let error_code = match signal.kind {
                SignalKind::ErrorResponse => env
                    .value
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .and_then(|c| c.as_str())
                    .map(str::to_owned),
                _ => None,
            };
            Verdict::Valid {
                signal: signal.to_string(),
                error_code,
            }
        }
        Err(e) => Verdict::Invalid(e.to_ditto_error()),
    }
}

/// How many messages were valid and invalid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub valid: usize,
    pub invalid: usize,
}

impl Tally {
    pub fn all_valid(&self) -> bool {
        self.invalid == 0
    }
}

/// Checks every message of one input, writing a line for each. `path` names a file (its
/// extension tells Markdown from JSON); without one the content is sniffed.
pub fn check_input<R: BufRead, W: Write>(
    mut reader: R,
    path: Option<&Path>,
    max_bytes: usize,
    out: &mut W,
    tally: &mut Tally,
) -> io::Result<()> {
    let format = sniff_format(path, reader.fill_buf()?);
    for item in messages(reader, format, max_bytes) {
        let verdict = match item? {
            Item::Message(bytes) => check_message(&bytes, max_bytes),
            Item::TooLarge { size } => Verdict::Invalid(
                ProtocolError::TooLarge {
                    size,
                    max: max_bytes,
                }
                .into(),
            ),
        };
        if verdict.is_valid() {
            tally.valid += 1;
        } else {
            tally.invalid += 1;
        }
        writeln!(out, "{verdict}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> (String, Tally) {
        let mut out = Vec::new();
        let mut tally = Tally::default();
        check_input(input.as_bytes(), None, 1024 * 1024, &mut out, &mut tally).unwrap();
        (String::from_utf8(out).unwrap(), tally)
    }

    #[test]
    fn one_line_per_message_in_order() {
        let input = concat!(
            r#"{"topic":"ns/t/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":1}"#,
            "\nnot json\n",
            r#"{"topic":"ns/t/things/twin/errors","headers":{},"path":"/","status":404,"value":{"status":404,"error":"things:thing.notfound","message":"m"}}"#,
            "\n"
        );
        let (out, tally) = run(input);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "ok things.commands:modifyAttribute");
        assert!(
            lines[1].starts_with("error 400 json.invalid: "),
            "{}",
            lines[1]
        );
        assert_eq!(
            lines[2],
            "ok things.responses:errorResponse things:thing.notfound"
        );
        assert_eq!(
            tally,
            Tally {
                valid: 2,
                invalid: 1
            }
        );
    }

    #[test]
    fn error_lines_stay_on_one_line() {
        // The topic holds an escaped newline, which the error message quotes.
        let (out, _) = run("{\"topic\":\"a\\nb\",\"path\":\"/\"}\n");
        assert!(
            out.starts_with("error 400 protocoladapter:unknown.topicpath: The topic path 'a b'"),
            "{out}"
        );
        assert_eq!(out.lines().count(), 1, "{out}");
    }
}
