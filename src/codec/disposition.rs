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
//! - a malformed disposition ([`params::read`]: an unterminated quoted string, a name
//!   that is not a token, no `=`, bytes after a value): busboy drops the part, Python
//!   reads something.
//!
//! A refusal says what is wrong and at which byte of the header value, never what
//! the header holds.

pub(crate) use super::params::Refusal;
use super::params::{self, Value};

/// What a part's `Content-Disposition` says, as far as the codec reads it.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Disposition {
    /// The `name` parameter, its quoted-string form undone; bytes that are not UTF-8
    /// read as U+FFFD (which no rule key holds).
    pub name: Option<String>,
}

/// Read a `Content-Disposition` header value.
pub(crate) fn parse(value: &[u8]) -> Result<Disposition, Refusal> {
    let mut out = Disposition::default();
    // The disposition type (`form-data`): any token, or none, as the readers take it.
    params::read(value, params::is_tchar, |name, value, at| {
        read_param(&mut out, name, value, at)
    })?;
    Ok(out)
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
