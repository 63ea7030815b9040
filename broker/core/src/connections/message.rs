//! A message as a transport carries it: an address, headers and a payload of bytes. What
//! adapters deliver and publish; payload mappers turn it into Ditto Protocol signals and back.

/// A transport message. Header names compare case-insensitively, and keep their spelling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExternalMessage {
    /// Where it was consumed from, or goes to.
    pub address: String,
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl ExternalMessage {
    pub fn new(address: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        ExternalMessage {
            address: address.into(),
            headers: Vec::new(),
            payload: payload.into(),
        }
    }

    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// A header's value, by a name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets a header, replacing one of the same name in any case.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(slot) => slot.1 = value,
            None => self.headers.push((name, value)),
        }
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The payload as text, when it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_keep_their_spelling() {
        let mut m =
            ExternalMessage::new("a", b"x".to_vec()).with_header("Content-Type", "text/plain");
        assert_eq!(m.content_type(), Some("text/plain"));
        m.set_header("content-type", "application/json");
        assert_eq!(
            m.headers,
            [("Content-Type".to_owned(), "application/json".to_owned())]
        );
        assert_eq!(m.text(), Some("x"));
    }
}
