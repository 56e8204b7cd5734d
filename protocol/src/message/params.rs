//! `;name=value` parameter lists (URI parameters and header parameters).

use super::lex::{is_token_byte, is_ws, quoted_end, trim, SemiIter};

/// A parameter list borrowing from the message: the text after the first `;`.
/// Names compare case-insensitively; values come back as written (quoted
/// strings keep their quotes, see [`super::unquote`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(&'a str);

impl<'a> Params<'a> {
    pub(crate) fn new(raw: &'a str) -> Self {
        Params(raw)
    }

    /// The raw text, without the leading `;`.
    pub fn as_str(&self) -> &'a str {
        self.0
    }

    /// True when there is no parameter.
    pub fn is_empty(&self) -> bool {
        trim(self.0).is_empty()
    }

    /// Iterates `(name, value)` pairs; `value` is `None` for a flag (`;lr`).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let raw = self.0;
        SemiIter::new(raw)
            .filter(|p| !trim(p).is_empty())
            .map(split_param)
    }

    /// `Some(value)` when the parameter is present (`Some(None)` for a flag).
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The value of a parameter that has one.
    pub fn value(&self, name: &str) -> Option<&'a str> {
        self.get(name).flatten()
    }

    /// True when the parameter is present, with or without value.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn split_param(p: &str) -> (&str, Option<&str>) {
    match super::lex::find_byte(p, b'=') {
        Some(e) => (trim(&p[..e]), Some(trim(&p[e + 1..]))),
        None => (trim(p), None),
    }
}

/// Validates header parameters (`*( SEMI generic-param )`) in `s`, which must
/// be empty or start with `;` after optional white space. Returns the text after
/// that first `;`.
pub(crate) fn header_params(s: &str) -> Result<&str, &'static str> {
    header_params_with(s, |_, _| Ok(()))
}

/// The parameter text of a value the parser already validated (no checks).
pub(crate) fn header_params_lax(s: &str) -> &str {
    trim(s).strip_prefix(';').unwrap_or("")
}

/// Like [`header_params`], calling `check(name, value)` for each parameter in
/// the same pass (for the parameters a header gives meaning to).
pub(crate) fn header_params_with<'a>(
    s: &'a str,
    mut check: impl FnMut(&'a str, Option<&'a str>) -> Result<(), &'static str>,
) -> Result<&'a str, &'static str> {
    // One forward scan: `; name [= value]` repeated, LWS allowed around `;`
    // and `=`, value a token/host or a quoted string.
    let s = trim(s);
    if s.is_empty() {
        return Ok("");
    }
    let Some(rest) = s.strip_prefix(';') else {
        return Err("junk before parameters");
    };
    let b = rest.as_bytes();
    let skip_ws = |mut i: usize| {
        while i < b.len() && is_ws(b[i]) {
            i += 1;
        }
        i
    };
    let mut i = 0;
    loop {
        i = skip_ws(i);
        let name_start = i;
        while i < b.len() && is_token_byte(b[i]) {
            i += 1;
        }
        if i == name_start {
            return Err(if i == b.len() || b[i] == b';' {
                "empty parameter"
            } else {
                "bad parameter name"
            });
        }
        let name = &rest[name_start..i];
        i = skip_ws(i);
        let mut value = None;
        if i < b.len() && b[i] == b'=' {
            i = skip_ws(i + 1);
            let v_start = i;
            if i < b.len() && b[i] == b'"' {
                i += quoted_end(&b[i..]).ok_or("unterminated quoted parameter value")?;
            } else {
                while i < b.len() && (is_token_byte(b[i]) || matches!(b[i], b'[' | b']' | b':')) {
                    i += 1;
                }
            }
            if i == v_start {
                return Err("bad parameter value");
            }
            value = Some(&rest[v_start..i]);
            i = skip_ws(i);
        }
        check(name, value)?;
        if i == b.len() {
            return Ok(rest);
        }
        if b[i] != b';' {
            return Err(if value.is_some() {
                "bad parameter value"
            } else {
                "bad parameter name"
            });
        }
        i += 1;
    }
}
