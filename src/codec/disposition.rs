//! A multipart part's `Content-Disposition` (RFC 7578 §4.2), its parameters read as
//! RFC 9110 §5.6.6 and RFC 6266 §4.1 write them: `; name=value`, the name a token in
//! any letter case, the value a token or a quoted string in which `\` escapes the next
//! byte and a `;` is only a character. This is how busboy (Node's multer) and Python's
//! `email` read a disposition that is well formed.
//!
//! Where the backends read one disposition differently, the part is refused, so that
//! the field rules never match another name than the one the upstream reads:
//!
//! - an extended or continued name (`name*=UTF-8''cvv`, `name*0="c"`, RFC 2231 and
//!   RFC 8187): Python decodes it and prefers it to `name`, busboy ignores it;
//! - a second `name` (in any case): busboy keeps the first, Python's `cgi` the last;
//! - a backslash inside the quoted name: readers undo escapes differently (`"c\vv"`
//!   is `cvv` to one, `c\vv` to another);
//! - an unterminated quoted string: Python reads to the end of the header, busboy
//!   drops the part;
//! - any other malformed parameter (a name that is not a token, no `=`, bytes after
//!   a value): busboy drops the part, Python reads something.
//!
//! A refusal says what is wrong and at which byte of the header value, never what
//! the header holds.

/// What a part's `Content-Disposition` says, as far as the codec reads it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Disposition {
    /// The `name` parameter, its quoted-string form undone; bytes that are not UTF-8
    /// read as U+FFFD (which no rule key holds).
    pub name: Option<String>,
}

/// Why a disposition is refused: what is wrong, and the byte of the header value
/// where it starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub what: &'static str,
    pub at: usize,
}

/// Read a `Content-Disposition` header value.
pub(crate) fn parse(value: &[u8]) -> Result<Disposition, Refusal> {
    let mut r = Reader {
        bytes: value,
        at: 0,
    };
    r.skip_ows();
    // The disposition type (`form-data`); any token, or none, as the readers take it.
    r.token();
    let mut out = Disposition::default();
    loop {
        r.skip_ows();
        match r.peek() {
            None => return Ok(out),
            Some(b';') => r.bump(),
            Some(_) => return Err(r.refusal("has bytes where a ';' or its end was due")),
        }
        r.skip_ows();
        if matches!(r.peek(), None | Some(b';')) {
            // An empty parameter (`;;`, a trailing `;`): nothing to read.
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
        read_param(&mut out, name, value, at)?;
    }
}

/// Take one parameter into `out`: the `name`, once, plainly written.
fn read_param(out: &mut Disposition, name: &[u8], value: Value, at: usize) -> Result<(), Refusal> {
    let refuse = |what| Err(Refusal { what, at });
    let extended = name
        .get(..b"name*".len())
        .is_some_and(|n| n.eq_ignore_ascii_case(b"name*"));
    if extended {
        return refuse("has an extended or continued name parameter (name*)");
    }
    if !name.eq_ignore_ascii_case(b"name") {
        return Ok(());
    }
    if out.name.is_some() {
        return refuse("has more than one name parameter");
    }
    if value.escaped {
        return refuse("has a backslash in its quoted name");
    }
    out.name = Some(String::from_utf8_lossy(&value.text).into_owned());
    Ok(())
}

/// A parameter value: its text, and whether a quoted-pair (`\x`) was undone in it.
struct Value {
    text: Vec<u8>,
    escaped: bool,
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
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
