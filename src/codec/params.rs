//! The parameters of a MIME header value (`type; name=value; ...`: a part's
//! `Content-Disposition`, a multipart `Content-Type`) read as RFC 9110 §5.6.6 and
//! RFC 6266 §4.1 write them: the name a token in any letter case, the value a token
//! or a quoted string in which `\` escapes the next byte and a `;` is only a
//! character. This is how busboy (Node's multer) and Python's `email` read a value
//! that is well formed; anything else is refused, never guessed at:
//!
//! - an unterminated quoted string: Python reads to the end of the header, busboy
//!   drops the part;
//! - a malformed parameter (a name that is not a token, no `=`, bytes after a value,
//!   a quote, backslash or control byte in an unquoted value): readers split it
//!   differently.
//!
//! A refusal says what is wrong and at which byte of the header value, never what
//! the value holds.

/// Read the parameters of a header value: first the value's type, the longest run
/// of bytes `head` accepts (any, or none, as the readers take it), then every
/// `; name=value`, handed to `each` with the byte it starts at. An empty parameter
/// (`;;`, a trailing `;`) is passed over.
pub(crate) fn read<'a>(
    value: &'a [u8],
    head: impl Fn(u8) -> bool,
    mut each: impl FnMut(&'a [u8], Value, usize) -> Result<(), Refusal>,
) -> Result<(), Refusal> {
    let mut r = Reader {
        bytes: value,
        at: 0,
    };
    r.skip_ows();
    while r.peek().is_some_and(&head) {
        r.bump();
    }
    loop {
        r.skip_ows();
        match r.peek() {
            None => return Ok(()),
            Some(b';') => r.bump(),
            Some(_) => return Err(r.refusal("has bytes where a ';' or its end was due")),
        }
        r.skip_ows();
        if matches!(r.peek(), None | Some(b';')) {
            continue;
        }
        let at = r.at;
        let name = r.token();
        if name.is_empty() {
            return Err(r.refusal("has a parameter name that is not a token"));
        }
        r.skip_ows();
        if r.peek() != Some(b'=') {
            return Err(r.refusal("has a parameter without a value"));
        }
        r.bump();
        r.skip_ows();
        let value = r.value()?;
        each(name, value, at)?;
    }
}

/// Why a header value is refused: what is wrong, and the byte of the value where
/// it starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub what: &'static str,
    pub at: usize,
}

/// A parameter value: its text, and whether a quoted-pair (`\x`) was undone in it.
pub(crate) struct Value {
    pub text: Vec<u8>,
    pub escaped: bool,
}

/// A checked reader over the header value.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn bump(&mut self) {
        self.at = self.at.saturating_add(1).min(self.bytes.len());
    }

    fn refusal(&self, what: &'static str) -> Refusal {
        Refusal { what, at: self.at }
    }

    /// Spaces and tabs.
    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.bump();
        }
    }

    /// The longest run of token characters here (RFC 9110 `tchar`), maybe empty.
    fn token(&mut self) -> &'a [u8] {
        let start = self.at;
        while self.peek().is_some_and(is_tchar) {
            self.bump();
        }
        self.bytes.get(start..self.at).unwrap_or_default()
    }

    /// A parameter value: a quoted string, or the bytes up to white space or a `;`.
    /// An unquoted value holding a quote, a backslash or a control byte is refused:
    /// readers split it differently.
    fn value(&mut self) -> Result<Value, Refusal> {
        if self.peek() == Some(b'"') {
            return self.quoted();
        }
        let mut text = Vec::new();
        while let Some(b) = self.peek() {
            match b {
                b' ' | b'\t' | b';' => break,
                b'"' | b'\\' => {
                    return Err(self.refusal("has a quote or backslash in an unquoted value"));
                }
                _ if b.is_ascii_control() => {
                    return Err(self.refusal("has a control byte in a value"));
                }
                _ => text.push(b),
            }
            self.bump();
        }
        Ok(Value {
            text,
            escaped: false,
        })
    }

    /// A quoted string, from its opening quote to its closing one; `\` takes the next
    /// byte as it is.
    fn quoted(&mut self) -> Result<Value, Refusal> {
        let open = self.at;
        let unterminated = Refusal {
            what: "has an unterminated quoted string",
            at: open,
        };
        self.bump();
        let mut text = Vec::new();
        let mut escaped = false;
        loop {
            let Some(b) = self.peek() else {
                return Err(unterminated);
            };
            self.bump();
            match b {
                b'"' => return Ok(Value { text, escaped }),
                b'\\' => {
                    let Some(next) = self.peek() else {
                        return Err(unterminated);
                    };
                    self.bump();
                    text.push(next);
                    escaped = true;
                }
                _ => text.push(b),
            }
        }
    }
}

/// A token character (RFC 9110 §5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
