//! Cuts files or stdin into Ditto Protocol messages, one [`Item`] per message, in input
//! order, for `twinwire protocol check` and `twinwire pipe`.
//!
//! Two forms of input are understood:
//!
//! * [`Format::Json`]: JSON documents one after the other, as JSON lines or as
//!   whole (possibly pretty-printed) documents. A small byte-level scanner
//!   counts bracket depth outside of strings, so a document ends when its depth
//!   returns to 0. Two things end an open document early, because it is then
//!   broken anyway and the next message must not be swallowed with it: a raw
//!   newline inside a string, and a `{` in column 0. A line that starts with anything else than `{` or `[` is one
//!   (bad) message up to the end of that line, so the caller can report it and
//!   carry on with the next line. A document still open at the end of the
//!   input is one message too; the caller's JSON parser reports it.
//! * [`Format::Markdown`]: the content of each `` ```json `` fenced block is one
//!   message, less the Liquid `{% raw %}` / `{% endraw %}` tags of the Ditto
//!   documentation. Text and other fenced blocks are skipped.
//!
//! The input is untrusted. Nothing here recurses (depth is a counter), nothing
//! assumes UTF-8, and the input is read through its `BufRead` buffer: at most
//! `max_bytes` of a message are stored (and, for Markdown, one line of at most
//! `max(max_bytes, 4 KiB)`). A longer message is still scanned to its end so
//! that the next one starts at the right place, and comes out as
//! [`Item::TooLarge`].

use std::io::{self, BufRead};
use std::path::Path;

/// The UTF-8 byte order mark, skipped at the very start of the input.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Markdown lines are kept up to `max(max_bytes, MIN_LINE_BYTES)` bytes, so
/// that fences are recognised even with a tiny `max_bytes`.
const MIN_LINE_BYTES: usize = 4096;

/// One message cut out of the input: its bytes, or why it could not be taken whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    /// The message's bytes, checked neither to be JSON nor UTF-8.
    Message(Vec<u8>),
    /// The message was longer than `max_bytes`; `size` is the length it
    /// reached (it was not stored).
    TooLarge { size: usize },
}

/// How the messages are laid out in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON documents one after the other: JSON lines or whole documents.
    Json,
    /// Markdown whose `` ```json `` fenced blocks hold the messages.
    Markdown,
}

/// Tells the format of an input.
///
/// With a path, its extension decides: `.md` or `.markdown` (any case) is
/// Markdown, anything else JSON. Without one (stdin), the input is Markdown if
/// its first non-blank line starts with `#` or is a fence (` ``` ` or `~~~`),
/// which no JSON document can do.
pub(crate) fn sniff_format(path: Option<&Path>, first_bytes: &[u8]) -> Format {
    if let Some(path) = path {
        let is_markdown = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| {
                extension.eq_ignore_ascii_case("md") || extension.eq_ignore_ascii_case("markdown")
            });
        return if is_markdown {
            Format::Markdown
        } else {
            Format::Json
        };
    }
    let text = first_bytes.strip_prefix(BOM).unwrap_or(first_bytes);
    let text = text.trim_ascii_start();
    if text.starts_with(b"#") || text.starts_with(b"```") || text.starts_with(b"~~~") {
        Format::Markdown
    } else {
        Format::Json
    }
}

/// Splits a reader into messages of at most `max_bytes` each.
///
/// The iterator yields each message as it is found. After a read error it
/// yields that error and then ends.
pub(crate) fn messages<R: BufRead>(reader: R, format: Format, max_bytes: usize) -> Messages<R> {
    let splitter = match format {
        Format::Json => Splitter::Json(JsonState::Between),
        Format::Markdown => Splitter::Markdown(Markdown {
            block: None,
            line: Vec::new(),
        }),
    };
    Messages {
        reader,
        splitter,
        pending: Pending::new(max_bytes),
        started: false,
        finished: false,
    }
}

/// The messages of an input, see [`messages`].
#[derive(Debug)]
pub(crate) struct Messages<R> {
    reader: R,
    splitter: Splitter,
    /// The message being collected.
    pending: Pending,
    /// Whether the byte order mark was looked for.
    started: bool,
    /// Set at the end of the input or after a read error.
    finished: bool,
}

impl<R: BufRead> Iterator for Messages<R> {
    type Item = io::Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let result = self.next_item();
        if !matches!(result, Ok(Some(_))) {
            self.finished = true;
        }
        result.transpose()
    }
}

impl<R: BufRead> Messages<R> {
    fn next_item(&mut self) -> io::Result<Option<Item>> {
        if !self.started {
            self.started = true;
            if fill(&mut self.reader)?.starts_with(BOM) {
                self.reader.consume(BOM.len());
            }
        }
        match &mut self.splitter {
            Splitter::Json(state) => next_json(&mut self.reader, state, &mut self.pending),
            Splitter::Markdown(markdown) => markdown.next(&mut self.reader, &mut self.pending),
        }
    }
}

/// The per-format state of [`Messages`].
#[derive(Debug)]
enum Splitter {
    Json(JsonState),
    Markdown(Markdown),
}

/// The message being collected: its bytes while they fit in `max_bytes`, and
/// its size in any case.
#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    size: usize,
    /// Set once the message is known to be longer than `max_bytes`; from then
    /// on nothing is stored.
    too_large: bool,
    max_bytes: usize,
}

impl Pending {
    fn new(max_bytes: usize) -> Self {
        Pending {
            bytes: Vec::new(),
            size: 0,
            too_large: false,
            max_bytes,
        }
    }

    /// Adds bytes of the message.
    fn push(&mut self, chunk: &[u8]) {
        self.size = self.size.saturating_add(chunk.len());
        if self.size > self.max_bytes {
            self.too_large = true;
        }
        if self.too_large {
            // Drops (and frees) whatever was stored.
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(chunk);
        }
    }

    /// Counts `len` bytes of the message that were not kept, which makes it
    /// too large.
    fn skip(&mut self, len: usize) {
        self.size = self.size.saturating_add(len);
        self.too_large = true;
        self.bytes = Vec::new();
    }

    /// Hands out the message and starts the next one.
    fn take(&mut self) -> Item {
        let item = if self.too_large {
            Item::TooLarge { size: self.size }
        } else {
            Item::Message(std::mem::take(&mut self.bytes))
        };
        *self = Pending::new(self.max_bytes);
        item
    }
}

/// Fills the reader's buffer, retrying on `Interrupted`. An empty buffer means
/// the end of the input.
fn fill<R: BufRead>(reader: &mut R) -> io::Result<&[u8]> {
    loop {
        match reader.fill_buf() {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    reader.fill_buf()
}

// ---------------------------------------------------------------------------
// JSON documents

/// Where the JSON scanner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonState {
    /// Between messages: whitespace is skipped.
    Between,
    /// In a document that opened with `{` or `[`; `depth` counts the brackets
    /// still open (at least 1).
    Document {
        depth: usize,
        in_string: bool,
        /// Just after a backslash in a string.
        escaped: bool,
        /// At the first byte of a line.
        line_start: bool,
    },
    /// In a line that does not start a document: it runs to the end of the line.
    Line,
}

/// The bytes the scanner must look at inside a string: its end, escapes, and raw newlines.
const STRING_STOPS: [bool; 256] = stops(b"\"\\\n");
/// The bytes the scanner must look at inside a document, outside strings.
const DOCUMENT_STOPS: [bool; 256] = stops(b"\"{}[]\n");

const fn stops(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}

/// JSON's whitespace.
fn is_json_whitespace(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
}

/// Reads until the next JSON message is complete, or the input ends.
fn next_json<R: BufRead>(
    reader: &mut R,
    state: &mut JsonState,
    pending: &mut Pending,
) -> io::Result<Option<Item>> {
    loop {
        let buf = fill(reader)?;
        if buf.is_empty() {
            // The end of the input also ends an open document or line.
            let started = *state != JsonState::Between;
            *state = JsonState::Between;
            return Ok(started.then(|| pending.take()));
        }
        let (used, complete) = scan_json(state, buf, pending);
        reader.consume(used);
        if complete {
            return Ok(Some(pending.take()));
        }
    }
}

/// Scans `buf` on from `state`, giving the bytes that belong to the current
/// message to `pending`. Stops after the byte that completes a message.
/// Returns how many bytes were used and whether a message was completed.
fn scan_json(state: &mut JsonState, buf: &[u8], pending: &mut Pending) -> (usize, bool) {
    // Where the current message's bytes start in `buf`.
    let mut start = 0;
    let mut index = 0;
    while index < buf.len() {
        // Inside a document only a few bytes matter: jump over the rest in one tight loop.
        if let JsonState::Document {
            in_string,
            escaped: false,
            line_start: false,
            ..
        } = *state
        {
            let table = if in_string {
                &STRING_STOPS
            } else {
                &DOCUMENT_STOPS
            };
            while index < buf.len() && !table[usize::from(buf[index])] {
                index += 1;
            }
            if index == buf.len() {
                break;
            }
        }
        let byte = buf[index];
        index += 1;
        // The loop body below was written for `index` pointing at `byte`.
        let index = index - 1;
        match state {
            JsonState::Between => {
                if is_json_whitespace(byte) {
                    start = index + 1;
                } else if byte == b'{' || byte == b'[' {
                    *state = JsonState::Document {
                        depth: 1,
                        in_string: false,
                        escaped: false,
                        line_start: false,
                    };
                } else {
                    // Garbage, a scalar or an unbalanced closing bracket.
                    *state = JsonState::Line;
                }
            }
            JsonState::Line => {
                if byte == b'\n' {
                    pending.push(&buf[start..index]);
                    *state = JsonState::Between;
                    return (index + 1, true);
                }
            }
            JsonState::Document {
                depth,
                in_string,
                escaped,
                line_start,
            } => {
                if *in_string {
                    if byte == b'\n' {
                        // JSON strings cannot hold a raw newline: the document is
                        // broken here (a truncated JSON line), not at end of input.
                        pending.push(&buf[start..index]);
                        *state = JsonState::Between;
                        return (index + 1, true);
                    }
                    if *escaped {
                        *escaped = false;
                    } else if byte == b'\\' {
                        *escaped = true;
                    } else if byte == b'"' {
                        *in_string = false;
                    }
                    continue;
                }
                if *line_start && byte == b'{' {
                    // A `{` in column 0 starts the next document: the open one was
                    // truncated. Pretty-printers indent nested objects, so this
                    // only cuts documents that are broken anyway.
                    pending.push(&buf[start..index]);
                    *state = JsonState::Between;
                    return (index, true);
                }
                *line_start = byte == b'\n';
                match byte {
                    b'"' => *in_string = true,
                    b'{' | b'[' => *depth = depth.saturating_add(1),
                    b'}' | b']' => {
                        *depth = depth.saturating_sub(1);
                        if *depth == 0 {
                            pending.push(&buf[start..=index]);
                            *state = JsonState::Between;
                            return (index + 1, true);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if *state != JsonState::Between {
        pending.push(&buf[start..]);
    }
    (buf.len(), false)
}

// ---------------------------------------------------------------------------
// Markdown

/// Where the Markdown splitter stands.
#[derive(Debug)]
struct Markdown {
    /// The fenced block the current line is in, if any.
    block: Option<Block>,
    /// The current line, without its line break, kept up to a bound.
    line: Vec<u8>,
}

/// An open fenced block.
#[derive(Debug, Clone, Copy)]
struct Block {
    fence: Fence,
    /// Whether its content is a message (`json` info string).
    is_json: bool,
}

/// A code fence: at least three backticks or tildes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fence {
    marker: u8,
    len: usize,
}

impl Markdown {
    /// Reads lines until a json block is complete, or the input ends.
    fn next<R: BufRead>(
        &mut self,
        reader: &mut R,
        pending: &mut Pending,
    ) -> io::Result<Option<Item>> {
        let line_cap = pending.max_bytes.max(MIN_LINE_BYTES);
        loop {
            let Some(len) = read_line(reader, &mut self.line, line_cap)? else {
                // The end of the input also ends an open json block.
                let in_json = self.block.take().is_some_and(|block| block.is_json);
                return Ok(in_json.then(|| pending.take()));
            };
            // A line longer than the bound is neither a fence nor storable.
            let whole = len == self.line.len();
            let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
            match self.block {
                None if whole => self.block = opening_fence(line),
                Some(block) if whole && closes(block.fence, line) => {
                    self.block = None;
                    if block.is_json {
                        return Ok(Some(pending.take()));
                    }
                }
                Some(block) if block.is_json => {
                    if whole {
                        pending.push(&remove_liquid_tags(line));
                        pending.push(b"\n");
                    } else {
                        pending.skip(len.saturating_add(1));
                    }
                }
                // Text outside blocks, or a line in another block.
                _ => {}
            }
        }
    }
}

/// Reads one line into `line`, without its `\n`, keeping at most `cap` bytes
/// of it. Returns the line's whole length, or `None` at the end of the input.
fn read_line<R: BufRead>(
    reader: &mut R,
    line: &mut Vec<u8>,
    cap: usize,
) -> io::Result<Option<usize>> {
    line.clear();
    let mut len = 0usize;
    let mut read_any = false;
    loop {
        let buf = fill(reader)?;
        if buf.is_empty() {
            return Ok(read_any.then_some(len));
        }
        read_any = true;
        let newline = buf.iter().position(|&byte| byte == b'\n');
        let chunk = match newline {
            Some(index) => &buf[..index],
            None => buf,
        };
        let room = cap.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        len = len.saturating_add(chunk.len());
        let used = chunk.len() + usize::from(newline.is_some());
        reader.consume(used);
        if newline.is_some() {
            return Ok(Some(len));
        }
    }
}

/// Splits a fence line into its fence and the rest (trimmed), or `None` if
/// the line is no fence.
fn parse_fence(line: &[u8]) -> Option<(Fence, &[u8])> {
    let line = line.trim_ascii();
    let marker = *line.first()?;
    if marker != b'`' && marker != b'~' {
        return None;
    }
    let len = line.iter().take_while(|&&byte| byte == marker).count();
    if len < 3 {
        return None;
    }
    Some((Fence { marker, len }, line[len..].trim_ascii()))
}

/// The block a line opens, if it is an opening fence.
fn opening_fence(line: &[u8]) -> Option<Block> {
    let (fence, info) = parse_fence(line)?;
    if fence.marker == b'`' && info.contains(&b'`') {
        // Inline code such as ```a``` at the start of a paragraph.
        return None;
    }
    let language = info
        .split(|&byte| byte.is_ascii_whitespace() || byte == b'{')
        .next()
        .unwrap_or_default();
    Some(Block {
        fence,
        is_json: language.eq_ignore_ascii_case(b"json"),
    })
}

/// Whether `line` closes a block opened with `fence`.
fn closes(fence: Fence, line: &[u8]) -> bool {
    parse_fence(line).is_some_and(|(closing, rest)| {
        closing.marker == fence.marker && closing.len >= fence.len && rest.is_empty()
    })
}

/// Removes the Liquid tags `{% raw %}` and `{% endraw %}` (also written with
/// `-` trim markers or other spacing) that the Ditto documentation puts
/// around `{{ ... }}` placeholders. Other text is kept as is.
fn remove_liquid_tags(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = find(rest, b"{%") {
        let (kept, tag_len) = match liquid_tag_len(&rest[at..]) {
            Some(tag_len) => (at, tag_len),
            None => (at + 2, 0),
        };
        out.extend_from_slice(&rest[..kept]);
        rest = &rest[kept + tag_len..];
    }
    out.extend_from_slice(rest);
    out
}

/// The length of the `{% raw %}` or `{% endraw %}` tag `text` starts with, if
/// it starts with one.
fn liquid_tag_len(text: &[u8]) -> Option<usize> {
    let inner = text.strip_prefix(b"{%")?;
    let end = find(inner, b"%}")?;
    let name = &inner[..end];
    let name = name.strip_prefix(b"-").unwrap_or(name);
    let name = name.strip_suffix(b"-").unwrap_or(name);
    match name.trim_ascii() {
        b"raw" | b"endraw" => Some(2 + end + 2),
        _ => None,
    }
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Read};

    const MB: usize = 1024 * 1024;

    fn message(text: &str) -> Item {
        Item::Message(text.as_bytes().to_vec())
    }

    fn collect<R: BufRead>(reader: R, format: Format, max_bytes: usize) -> Vec<Item> {
        messages(reader, format, max_bytes)
            .collect::<io::Result<Vec<_>>>()
            .unwrap()
    }

    /// Splits `input` with buffers of several sizes (so that messages, strings,
    /// escapes, fences and tags straddle buffer boundaries), checks that all
    /// agree, and returns the messages.
    fn split(input: &[u8], format: Format, max_bytes: usize) -> Vec<Item> {
        let whole = collect(input, format, max_bytes);
        for capacity in [1, 2, 3, 7, 64] {
            let items = collect(BufReader::with_capacity(capacity, input), format, max_bytes);
            assert_eq!(items, whole, "buffer capacity {capacity}");
        }
        whole
    }

    fn split_json(input: &str) -> Vec<Item> {
        split(input.as_bytes(), Format::Json, MB)
    }

    #[test]
    fn json_lines() {
        let input = "{\"topic\":\"a/b/things/twin/commands/modify\",\"path\":\"/\"}\n\
                     {\"topic\":\"c/d/things/twin/events/modified\"}\r\n\
                     [1, 2]\n";
        assert_eq!(
            split_json(input),
            [
                message("{\"topic\":\"a/b/things/twin/commands/modify\",\"path\":\"/\"}"),
                message("{\"topic\":\"c/d/things/twin/events/modified\"}"),
                message("[1, 2]"),
            ]
        );
    }

    #[test]
    fn empty_and_blank_inputs_have_no_messages() {
        assert_eq!(split_json(""), []);
        assert_eq!(split_json("\n \r\n\t\n"), []);
        assert_eq!(split(b"", Format::Markdown, MB), []);
    }

    #[test]
    fn pretty_printed_document() {
        let document = "{\n  \"topic\": \"org.eclipse.ditto/fancy-thing/things/twin/commands/create\",\n  \
                        \"headers\": {\n    \"correlation-id\": \"<id>\"\n  },\n  \"path\": \"/\",\n  \
                        \"value\": {\n    \"attributes\": { \"tags\": [\"a\", \"b\"] }\n  }\n}";
        let input = format!("\n\n{document}\n\n");
        assert_eq!(split_json(&input), [message(document)]);
    }

    #[test]
    fn several_pretty_printed_documents() {
        let input = "{\n  \"a\": 1\n}\n{\n  \"b\": [\n    2\n  ]\n}\n";
        assert_eq!(
            split_json(input),
            [
                message("{\n  \"a\": 1\n}"),
                message("{\n  \"b\": [\n    2\n  ]\n}")
            ]
        );
    }

    #[test]
    fn two_documents_on_consecutive_lines_and_on_one_line() {
        assert_eq!(
            split_json("{\"a\":1}\n{\"b\":2}"),
            [message("{\"a\":1}"), message("{\"b\":2}")]
        );
        assert_eq!(split_json("{}{}"), [message("{}"), message("{}")]);
        assert_eq!(
            split_json("{\"a\":{}} [[]]\t{}"),
            [message("{\"a\":{}}"), message("[[]]"), message("{}")]
        );
    }

    #[test]
    fn strings_with_brackets_and_escapes() {
        let first = r#"{"a":"}{][","b":"say \"}\" and \\","c":"\\\"{"}"#;
        let second = r#"{"path":"/features/x\\"}"#;
        let input = format!("{first}\n{second}\n");
        assert_eq!(split_json(&input), [message(first), message(second)]);
    }

    #[test]
    fn garbage_line_between_good_lines() {
        let input = "{\"a\":1}\nthis is not json {\"x\": [\n{\"b\":2}\n";
        assert_eq!(
            split_json(input),
            [
                message("{\"a\":1}"),
                message("this is not json {\"x\": ["),
                message("{\"b\":2}"),
            ]
        );
    }

    #[test]
    fn scalars_and_unbalanced_closers_are_one_line_each() {
        let input = "42\n\"text\"\n] {\"a\":1}\n{\"b\":2}}\n{}\n";
        assert_eq!(
            split_json(input),
            [
                message("42"),
                message("\"text\""),
                message("] {\"a\":1}"),
                message("{\"b\":2}"),
                message("}"),
                message("{}"),
            ]
        );
    }

    #[test]
    fn garbage_after_a_document_on_its_line() {
        assert_eq!(
            split_json("{\"a\":1} trailing\n{}"),
            [message("{\"a\":1}"), message("trailing"), message("{}")]
        );
    }

    #[test]
    fn invalid_utf8_is_passed_through() {
        let input: &[u8] = b"{\"a\":\"\xff\xfe\"}\n\xc3\x28 binary \x00\x01\n{\"b\":2}\n\xff";
        let expected = [
            Item::Message(b"{\"a\":\"\xff\xfe\"}".to_vec()),
            Item::Message(b"\xc3\x28 binary \x00\x01".to_vec()),
            Item::Message(b"{\"b\":2}".to_vec()),
            Item::Message(b"\xff".to_vec()),
        ];
        assert_eq!(split(input, Format::Json, MB), expected);
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let input = b"\xEF\xBB\xBF{\"a\":1}\n";
        assert_eq!(
            collect(&input[..], Format::Json, MB),
            [message("{\"a\":1}")]
        );
        let markdown = b"\xEF\xBB\xBF```json\n{}\n```\n";
        assert_eq!(
            collect(&markdown[..], Format::Markdown, MB),
            [message("{}\n")]
        );
    }

    #[test]
    fn deeply_nested_arrays() {
        let depth = 100_000;
        let open = "[".repeat(depth);
        // Never closed: one message at the end of the input.
        assert_eq!(split_json(&open), [message(&open)]);
        // Closed, then another document.
        let closed = format!("{open}{}", "]".repeat(depth));
        let input = format!("{closed}\n{{}}\n");
        assert_eq!(split_json(&input), [message(&closed), message("{}")]);
    }

    #[test]
    fn unterminated_document_ends_at_end_of_input() {
        assert_eq!(
            split_json("{\"a\":1}\n{\"b\": [1, 2,\n  \"c\""),
            [message("{\"a\":1}"), message("{\"b\": [1, 2,\n  \"c\"")]
        );
        // An unterminated string ends at its line: strings hold no raw newline.
        assert_eq!(
            split_json("{\"a\": \"open}\n{}\n"),
            [message("{\"a\": \"open}"), message("{}")]
        );
        // A truncated JSON line ends where the next line opens a document in column 0.
        assert_eq!(
            split_json("{\"topic\": \n{\"b\":1}\n"),
            [message("{\"topic\": \n"), message("{\"b\":1}")]
        );
        // A trailing backslash in a string at the end of the input.
        assert_eq!(split_json("[\"\\"), [message("[\"\\")]);
    }

    #[test]
    fn fifty_megabyte_line_is_too_large_and_not_stored() {
        let len = 50 * MB;
        let mut input = Vec::with_capacity(len + 16);
        input.extend_from_slice(b"{\"a\":\"");
        input.resize(len - 2, b'x');
        input.extend_from_slice(b"\"}");
        assert_eq!(input.len(), len);
        input.extend_from_slice(b"\n{\"b\":2}\n");

        let items = collect(BufReader::new(&input[..]), Format::Json, MB);
        assert_eq!(items, [Item::TooLarge { size: len }, message("{\"b\":2}")]);

        // The same for a garbage line: scanned to its end, then the next line.
        input[0] = b'x';
        let items = collect(BufReader::new(&input[..]), Format::Json, MB);
        assert_eq!(items, [Item::TooLarge { size: len }, message("{\"b\":2}")]);
    }

    #[test]
    fn too_large_message_frees_its_bytes() {
        let mut pending = Pending::new(MB);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..16 {
            pending.push(&chunk);
        }
        assert_eq!(pending.bytes.len(), MB);
        for _ in 0..50 * 16 {
            pending.push(&chunk);
            assert_eq!(pending.bytes.capacity(), 0);
        }
        assert_eq!(pending.take(), Item::TooLarge { size: 51 * MB });
        // The next message starts afresh.
        pending.push(b"{}");
        assert_eq!(pending.take(), message("{}"));
    }

    #[test]
    fn message_of_exactly_max_bytes_fits() {
        assert_eq!(
            split(b"[1]\n[12]\n", Format::Json, 3),
            [message("[1]"), Item::TooLarge { size: 4 }]
        );
    }

    const MARKDOWN: &str = r#"## Alternative CreateThing commands

Some text with a { brace and ```inline``` code.

```json
{
  "topic": "org.eclipse.ditto/fancy-thing/things/twin/commands/create",
  "path": "/"
}
```

```bash
curl -X PUT -d '{"not": "a message"}'
```

````markdown
```json
{"inside": "another fence"}
```
````

### With a reference

```json
{
  "value": {
    "_copyPolicyFrom": "{% raw %}{{ ref:things/com:acme:fancy-thing_52/policyId }}{% endraw %}"
  }
}
```
"#;

    #[test]
    fn markdown_json_blocks() {
        assert_eq!(
            split(MARKDOWN.as_bytes(), Format::Markdown, MB),
            [
                message(
                    "{\n  \"topic\": \"org.eclipse.ditto/fancy-thing/things/twin/commands/create\",\n  \
                     \"path\": \"/\"\n}\n"
                ),
                message(
                    "{\n  \"value\": {\n    \"_copyPolicyFrom\": \
                     \"{{ ref:things/com:acme:fancy-thing_52/policyId }}\"\n  }\n}\n"
                ),
            ]
        );
    }

    #[test]
    fn markdown_with_crlf_tildes_and_unterminated_block() {
        let input = "# Title\r\n~~~ JSON\r\n{\"a\":1}\r\n~~~\r\n```json\n{\"b\":\n";
        assert_eq!(
            split(input.as_bytes(), Format::Markdown, MB),
            [message("{\"a\":1}\n"), message("{\"b\":\n")]
        );
    }

    #[test]
    fn markdown_keeps_other_liquid_like_text() {
        assert_eq!(remove_liquid_tags(b"{%- raw -%}a{%endraw%}"), b"a");
        assert_eq!(
            remove_liquid_tags(b"\"{% if x %}\" {% {%"),
            b"\"{% if x %}\" {% {%"
        );
        assert_eq!(remove_liquid_tags(b"{%}"), b"{%}");
    }

    #[test]
    fn markdown_too_large_block_and_long_text_line() {
        let long = "x".repeat(3 * MB);
        let input =
            format!("# T\n{long}\n```json\n{{\"a\":\"{long}\"}}\n```\n```json\n{{}}\n```\n");
        assert_eq!(
            collect(input.as_bytes(), Format::Markdown, MB),
            [Item::TooLarge { size: 3 * MB + 9 }, message("{}\n")]
        );
        // A block just over the limit, made of short lines.
        assert_eq!(
            split(b"```json\n[1,\n2]\n```\n", Format::Markdown, 6),
            [Item::TooLarge { size: 7 }]
        );
    }

    #[test]
    fn sniffing() {
        let md = Some(Path::new("things/create.md"));
        assert_eq!(sniff_format(md, b"{}"), Format::Markdown);
        assert_eq!(
            sniff_format(Some(Path::new("README.Markdown")), b""),
            Format::Markdown
        );
        assert_eq!(
            sniff_format(Some(Path::new("x.json")), b"# title"),
            Format::Json
        );
        assert_eq!(
            sniff_format(Some(Path::new("messages")), b"# title"),
            Format::Json
        );
        assert_eq!(sniff_format(None, b"# Create a thing\n"), Format::Markdown);
        assert_eq!(sniff_format(None, b"\n  \r\n```json\n{}"), Format::Markdown);
        assert_eq!(sniff_format(None, b"\xEF\xBB\xBF## T"), Format::Markdown);
        assert_eq!(sniff_format(None, b"\n{\"topic\": \"#\"}"), Format::Json);
        assert_eq!(sniff_format(None, b"[]"), Format::Json);
        assert_eq!(sniff_format(None, b""), Format::Json);
        assert_eq!(sniff_format(None, b"\xff\xfe"), Format::Json);
    }

    /// A reader that fails with `kind` on its first read, then reads `data`.
    struct Failing {
        kind: Option<io::ErrorKind>,
        data: &'static [u8],
    }

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.kind.take() {
                Some(kind) => Err(io::Error::new(kind, "test")),
                None => self.data.read(buf),
            }
        }
    }

    #[test]
    fn read_errors_end_the_messages() {
        for format in [Format::Json, Format::Markdown] {
            let reader = BufReader::new(Failing {
                kind: Some(io::ErrorKind::Other),
                data: b"{}",
            });
            let mut items = messages(reader, format, MB);
            assert!(items.next().is_some_and(|item| item.is_err()));
            assert!(items.next().is_none());
        }
        let reader = BufReader::new(Failing {
            kind: Some(io::ErrorKind::Interrupted),
            data: b"{}",
        });
        assert_eq!(collect(reader, Format::Json, MB), [message("{}")]);
    }
}
