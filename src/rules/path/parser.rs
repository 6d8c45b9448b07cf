//! The field-path parser: a checked reader over the path's characters.

use super::{Segment, invalid, parse_index};
use crate::error::{Error, Result};

/// Reads one rule path into its segments.
pub(super) struct Parser<'a> {
    pub(super) src: &'a str,
    pub(super) chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    pub(super) out: Vec<Segment>,
}

impl Parser<'_> {
    fn err(&self, why: &str) -> Error {
        invalid(self.src, why)
    }

    pub(super) fn run(mut self) -> Result<Vec<Segment>> {
        // Optional `$` root marker.
        if self.chars.peek().map(|(_, c)| *c) == Some('$') {
            self.chars.next();
            match self.chars.peek().map(|(_, c)| *c) {
                None => return Err(self.err("the path is empty")),
                Some('.') => {
                    self.chars.next();
                }
                Some('[') => {}
                Some(_) => return Err(self.err("`$` must be followed by `.` or `[`")),
            }
        }
        // The grammar: segment (('.' segment) | bracket)*, where a leading bracket
        // may stand in for the first segment.
        let mut need_segment = !matches!(self.chars.peek(), Some((_, '[')));
        loop {
            if need_segment {
                self.segment()?;
            }
            match self.chars.next() {
                None => return Ok(self.out),
                Some((_, '.')) => need_segment = true,
                Some((_, '[')) => {
                    self.bracket()?;
                    need_segment = false;
                }
                Some(_) => return Err(self.err("expected `.` or `[` after a segment")),
            }
        }
    }

    /// A dotted segment: `**`, `*`, a backtick-quoted key or a bare key.
    fn segment(&mut self) -> Result<()> {
        match self.chars.peek().map(|(_, c)| *c) {
            None | Some('.') => Err(self.err("empty segment")),
            Some('[') => {
                // `a.[0]` — tolerate as `a[0]`.
                Ok(())
            }
            Some('`') => {
                self.chars.next();
                let mut key = String::new();
                loop {
                    match self.chars.next() {
                        None => return Err(self.err("unterminated backtick-quoted key")),
                        Some((_, '`')) => break,
                        Some((_, c)) => key.push(c),
                    }
                }
                self.out.push(Segment::Key(key));
                self.stop_check()
            }
            Some(_) => {
                let mut key = String::new();
                while let Some((_, c)) = self.chars.peek().copied() {
                    if c == '.' || c == '[' {
                        break;
                    }
                    if c == ']' || c == '`' || c == '"' {
                        return Err(self.err("unexpected character in a key"));
                    }
                    key.push(c);
                    self.chars.next();
                }
                let seg = match key.as_str() {
                    "**" => Segment::AnyDepth,
                    "*" => Segment::AnyOne,
                    k if k.contains('*') => {
                        return Err(self.err("`*` must be a whole segment"));
                    }
                    _ => Segment::Key(key),
                };
                self.out.push(seg);
                Ok(())
            }
        }
    }

    fn stop_check(&mut self) -> Result<()> {
        match self.chars.peek().map(|(_, c)| *c) {
            None | Some('.') | Some('[') => Ok(()),
            Some(_) => Err(self.err("expected `.` or `[` after a quoted key")),
        }
    }

    /// After `[`: `n]`, `*]`, `"key"]`, `key]`.
    fn bracket(&mut self) -> Result<()> {
        let mut inner = String::new();
        let quoted = matches!(self.chars.peek(), Some((_, '"')));
        if quoted {
            self.chars.next();
            loop {
                match self.chars.next() {
                    None => return Err(self.err("unterminated quoted key")),
                    Some((_, '"')) => break,
                    Some((_, '\\')) => match self.chars.next() {
                        Some((_, c)) => inner.push(c),
                        None => return Err(self.err("unterminated quoted key")),
                    },
                    Some((_, c)) => inner.push(c),
                }
            }
            match self.chars.next() {
                Some((_, ']')) => {}
                _ => return Err(self.err("expected `]` after a quoted key")),
            }
            self.out.push(Segment::Key(inner));
            return Ok(());
        }
        loop {
            match self.chars.next() {
                None => return Err(self.err("unterminated `[`")),
                Some((_, ']')) => break,
                Some((_, '[')) => return Err(self.err("nested `[`")),
                Some((_, c)) => inner.push(c),
            }
        }
        let seg = match inner.as_str() {
            "" => return Err(self.err("empty `[]`")),
            "*" => Segment::AnyIndex,
            "**" => Segment::AnyDepth,
            s => match parse_index(s) {
                Some(n) => Segment::Index(n),
                None if s.contains('*') => return Err(self.err("`*` must be a whole segment")),
                None => Segment::Key(inner),
            },
        };
        self.out.push(seg);
        Ok(())
    }
}
