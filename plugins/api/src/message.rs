//! [`Message`]: the owned message of both sides, flat and byte-typed, so that crossing the plugin
//! boundary costs one allocation and one copy, and a clone costs a reference count.

use std::borrow::Cow;
use std::fmt;
use std::str::Utf8Error;
use std::sync::Arc;

/// An owned transport message: an address (topic, queue, routing key...), headers (name/value
/// pairs, in order, duplicates allowed) and a payload, all bytes.
///
/// It is one reference-counted allocation: a table of end offsets (`u32`) followed by the address,
/// each header's name and value, and the payload. Cloning is cheap; the parts are never changed
/// after construction. A message is limited to 4 GiB.
#[derive(Clone)]
pub struct Message {
    buf: Arc<[u8]>,
    headers: u32,
}

const OFFSET: usize = size_of::<u32>();

impl Message {
    /// A message of `address`, `headers` and `payload`.
    ///
    /// ```
    /// use twinwire_plugin::Message;
    /// let msg = Message::new("telemetry/t1", &[("content-type", "application/json")], b"{}");
    /// assert_eq!(msg.address(), b"telemetry/t1");
    /// assert_eq!(msg.header("content-type"), Some(&b"application/json"[..]));
    /// assert_eq!(msg.payload(), b"{}");
    /// ```
    pub fn new<A, N, V, P>(address: A, headers: &[(N, V)], payload: P) -> Message
    where
        A: AsRef<[u8]>,
        N: AsRef<[u8]>,
        V: AsRef<[u8]>,
        P: AsRef<[u8]>,
    {
        Message::from_parts(
            address.as_ref(),
            headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref())),
            payload.as_ref(),
        )
    }

    /// A message whose headers come from an iterator that can be walked twice (once to size the
    /// allocation, once to fill it). One allocation.
    ///
    /// # Panics
    /// If the message would be larger than 4 GiB.
    pub fn from_parts<'h, I>(address: &[u8], headers: I, payload: &[u8]) -> Message
    where
        I: Iterator<Item = (&'h [u8], &'h [u8])> + Clone,
    {
        let mut count = 0usize;
        let mut data = address.len() + payload.len();
        for (name, value) in headers.clone() {
            count += 1;
            data += name.len() + value.len();
        }
        let pieces = 2 * count + 2;
        let table = pieces * OFFSET;
        let total = table + data;
        let headers_u32 = u32::try_from(count).expect("twinwire message: too many headers");
        u32::try_from(total).expect("twinwire message: larger than 4 GiB");

        // One allocation of the exact size (FromIterator for Arc<[T]> allocates once for a
        // TrustedLen iterator), filled in place while we hold the only reference.
        let mut buf: Arc<[u8]> = std::iter::repeat_n(0u8, total).collect();
        let out = Arc::get_mut(&mut buf).expect("fresh Arc is unique");
        let mut pos = table;
        let mut piece = 0usize;
        let mut put = |out: &mut [u8], bytes: &[u8]| {
            out[pos..pos + bytes.len()].copy_from_slice(bytes);
            pos += bytes.len();
            // `pos <= total`, checked to fit in u32 above.
            out[piece * OFFSET..(piece + 1) * OFFSET].copy_from_slice(&(pos as u32).to_ne_bytes());
            piece += 1;
        };
        put(out, address);
        let mut written = 0usize;
        for (name, value) in headers.take(count) {
            put(out, name);
            put(out, value);
            written += 1;
        }
        assert_eq!(
            written, count,
            "twinwire message: header iterator changed between walks"
        );
        put(out, payload);
        Message {
            buf,
            headers: headers_u32,
        }
    }

    /// A builder, for headers added one at a time.
    pub fn builder(address: impl Into<Vec<u8>>) -> MessageBuilder {
        MessageBuilder {
            address: address.into(),
            headers: Vec::new(),
            payload: Vec::new(),
        }
    }

    fn end(&self, piece: usize) -> usize {
        let at = piece * OFFSET;
        let mut raw = [0u8; OFFSET];
        raw.copy_from_slice(&self.buf[at..at + OFFSET]);
        u32::from_ne_bytes(raw) as usize
    }

    fn piece(&self, piece: usize) -> &[u8] {
        let start = if piece == 0 {
            (2 * self.headers as usize + 2) * OFFSET
        } else {
            self.end(piece - 1)
        };
        &self.buf[start..self.end(piece)]
    }

    /// The transport address.
    pub fn address(&self) -> &[u8] {
        self.piece(0)
    }

    /// The payload.
    pub fn payload(&self) -> &[u8] {
        self.piece(2 * self.headers as usize + 1)
    }

    /// Number of headers.
    pub fn header_count(&self) -> usize {
        self.headers as usize
    }

    /// Header `index` as (name, value).
    ///
    /// # Panics
    /// If `index >= header_count()`.
    pub fn header_at(&self, index: usize) -> (&[u8], &[u8]) {
        assert!(index < self.header_count(), "header index out of range");
        (self.piece(1 + 2 * index), self.piece(2 + 2 * index))
    }

    /// The headers in order, as (name, value).
    pub fn headers(&self) -> Headers<'_> {
        Headers {
            message: self,
            next: 0,
        }
    }

    /// The value of the first header named `name` (compared byte for byte).
    pub fn header(&self, name: impl AsRef<[u8]>) -> Option<&[u8]> {
        let name = name.as_ref();
        self.headers().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The address as UTF-8, if it is.
    pub fn address_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(self.address())
    }

    /// The address as UTF-8, invalid sequences replaced.
    pub fn address_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.address())
    }

    /// The payload as UTF-8, if it is.
    pub fn payload_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(self.payload())
    }

    /// The payload as UTF-8, invalid sequences replaced.
    pub fn payload_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.payload())
    }

    /// The value of the first header named `name` as UTF-8: `None` if absent, `Some(Err)` if not
    /// UTF-8.
    pub fn header_str(&self, name: impl AsRef<[u8]>) -> Option<Result<&str, Utf8Error>> {
        self.header(name).map(std::str::from_utf8)
    }

    /// The headers as UTF-8 pairs, invalid sequences replaced.
    pub fn headers_lossy(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.headers()
            .map(|(n, v)| (String::from_utf8_lossy(n), String::from_utf8_lossy(v)))
    }

    /// Bytes allocated for this message (the offset table included).
    pub fn allocated_len(&self) -> usize {
        self.buf.len()
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.address() == other.address()
            && self.payload() == other.payload()
            && self.headers().eq(other.headers())
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Lossy<'a>(&'a [u8]);
        impl fmt::Debug for Lossy<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&String::from_utf8_lossy(self.0), f)
            }
        }
        f.debug_struct("Message")
            .field("address", &Lossy(self.address()))
            .field(
                "headers",
                &self
                    .headers()
                    .map(|(n, v)| (Lossy(n), Lossy(v)))
                    .collect::<Vec<_>>(),
            )
            .field("payload", &Lossy(self.payload()))
            .finish()
    }
}

/// The headers of a [`Message`], in order.
#[derive(Clone)]
pub struct Headers<'a> {
    message: &'a Message,
    next: usize,
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.message.header_count() {
            return None;
        }
        let header = self.message.header_at(self.next);
        self.next += 1;
        Some(header)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.message.header_count() - self.next;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Headers<'_> {}

/// Builds a [`Message`] piece by piece (the pieces are copied into one allocation by `build`).
#[derive(Clone, Debug, Default)]
pub struct MessageBuilder {
    address: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    payload: Vec<u8>,
}

impl MessageBuilder {
    /// Appends a header.
    pub fn header(mut self, name: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> MessageBuilder {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> MessageBuilder {
        self.payload = payload.into();
        self
    }

    /// The message.
    pub fn build(&self) -> Message {
        Message::new(&self.address, &self.headers, &self.payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip() {
        let msg = Message::new(
            "a/b",
            &[(&b"h1"[..], &b"v1"[..]), (b"", b""), (b"h1", b"\xff\x00")],
            [0u8, 1, 2, 255],
        );
        assert_eq!(msg.address(), b"a/b");
        assert_eq!(msg.header_count(), 3);
        assert_eq!(
            msg.headers().collect::<Vec<_>>(),
            vec![(&b"h1"[..], &b"v1"[..]), (b"", b""), (b"h1", b"\xff\x00")]
        );
        assert_eq!(msg.header("h1"), Some(&b"v1"[..]));
        assert_eq!(msg.header("nope"), None);
        assert_eq!(msg.payload(), &[0, 1, 2, 255]);
        assert!(msg.header_str("h1").is_some_and(|v| v == Ok("v1")));
        // Offset table (8 pieces), address, h1/v1, empty header, h1/value, payload.
        assert_eq!(msg.allocated_len(), 8 * 4 + 3 + 4 + 4 + 4);
        assert_eq!(msg.clone(), msg);
    }

    #[test]
    fn empty_message() {
        let msg = Message::new("", &[] as &[(&str, &str)], "");
        assert_eq!(msg.address(), b"");
        assert_eq!(msg.payload(), b"");
        assert_eq!(msg.headers().count(), 0);
    }

    #[test]
    fn builder_and_lossy() {
        let msg = Message::builder("t\u{e9}")
            .header("k", "v")
            .payload(vec![b'o', 0xff])
            .build();
        assert_eq!(msg.address_str(), Ok("t\u{e9}"));
        assert!(msg.payload_str().is_err());
        assert_eq!(msg.payload_lossy(), "o\u{fffd}");
        assert_eq!(
            msg.headers_lossy().collect::<Vec<_>>(),
            vec![(Cow::Borrowed("k"), Cow::Borrowed("v"))]
        );
        assert!(format!("{msg:?}").contains("\"k\""));
    }
}
