//! Turning configuration text into `(key, value, location)` triples.
//!
//! Two formats: the guide's `key="value"` lines, and Poly XML provisioning files
//! (parameters as attributes of elements under `<polycomConfig>`, nested any
//! depth). Keys are not interpreted here; `schema` does that.
//!
//! Why the line format is parsed by hand: it is the guide's own notation, not
//! INI or TOML (keys contain dots and digits, values are always one quoted
//! string, and a trailing comment may follow), and every parameter must keep
//! its line number for error messages, which no general-purpose format crate
//! reports per key. XML is parsed with `roxmltree`, which does report positions.

use std::sync::Arc;

use super::error::{ConfigError, Location};

/// One `key = value` assignment as written.
#[derive(Clone, PartialEq, Eq)]
pub struct RawParam {
    /// The key as written (case kept).
    pub key: String,
    /// The value as written; may be a password, never logged.
    pub value: String,
    /// Where it was written.
    pub location: Location,
}

impl std::fmt::Debug for RawParam {
    /// Values are left out: they may be passwords.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawParam({} at {})", self.key, self.location)
    }
}

/// The assignments of one source, and its syntax errors.
#[derive(Clone, Debug, Default)]
pub struct ParsedSource {
    /// The assignments, in source order.
    pub params: Vec<RawParam>,
    /// Lines that could not be read as assignments.
    pub errors: Vec<ConfigError>,
}

/// Parses either format: text whose first non-blank character is `<` is XML
/// (Poly's own `.cfg` files are XML), anything else is `key="value"` lines.
pub fn parse_auto(text: &str, path: &str) -> ParsedSource {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('<') {
        parse_xml(text, path)
    } else {
        parse_lines(text, path)
    }
}

/// Parses the guide's notation: one `key="value"` per line, `#` comments, blank
/// lines, whitespace around `=`. Unquoted values run to the end of the line (or
/// to a ` #` comment). Inside quotes, `\"` and `\\` are escapes; other
/// backslashes are kept (so `\r\n` payloads stay as written).
pub fn parse_lines(text: &str, path: &str) -> ParsedSource {
    let mut out = ParsedSource::default();
    let path: Arc<str> = path.into();
    for (n, raw_line) in text.lines().enumerate() {
        let location = Location::File {
            path: path.clone(),
            line: n as u32 + 1,
        };
        let line = raw_line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_assignment(line) {
            Ok((key, value)) => out.params.push(RawParam {
                key: key.to_string(),
                value,
                location,
            }),
            Err(message) => out.errors.push(ConfigError::Syntax {
                location,
                message: message.to_string(),
            }),
        }
    }
    out
}

fn parse_assignment(line: &str) -> Result<(&str, String), &'static str> {
    let Some(eq) = line.find('=') else {
        return Err("expected key=\"value\"");
    };
    let key = line[..eq].trim();
    if key.is_empty() {
        return Err("missing key before '='");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err("a key may only contain letters, digits, '.', '_' and '-'");
    }
    let rest = line[eq + 1..].trim_start();
    let Some(quoted) = rest.strip_prefix('"') else {
        let value = match rest.find(" #").or_else(|| rest.find("\t#")) {
            Some(i) => &rest[..i],
            None => rest,
        };
        return Ok((key, value.trim_end().to_string()));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    let end = loop {
        match chars.next() {
            None => return Err("unterminated quoted value"),
            Some((i, '"')) => break i,
            Some((_, '\\')) => match chars.next() {
                Some((_, c @ ('"' | '\\'))) => value.push(c),
                Some((_, c)) => {
                    value.push('\\');
                    value.push(c);
                }
                None => return Err("unterminated quoted value"),
            },
            Some((_, c)) => value.push(c),
        }
    };
    let trailing = quoted[end + 1..].trim();
    if !trailing.is_empty() && !trailing.starts_with('#') {
        return Err("unexpected text after the closing quote");
    }
    Ok((key, value))
}

/// Parses a Poly XML file: every attribute of every element is a parameter
/// (namespaced attributes such as `xsi:noNamespaceSchemaLocation` are not).
pub fn parse_xml(text: &str, path: &str) -> ParsedSource {
    let mut out = ParsedSource::default();
    let path: Arc<str> = path.into();
    let doc = match roxmltree::Document::parse(text) {
        Ok(doc) => doc,
        Err(e) => {
            let pos = e.pos();
            out.errors.push(ConfigError::Syntax {
                location: Location::File {
                    path: path.clone(),
                    line: pos.row,
                },
                message: format!("malformed XML: {e}"),
            });
            return out;
        }
    };
    let root = doc.root_element();
    if !root.tag_name().name().eq_ignore_ascii_case("polycomConfig") {
        out.errors.push(ConfigError::Syntax {
            location: Location::File {
                path: path.clone(),
                line: doc.text_pos_at(root.range().start).row,
            },
            message: format!(
                "the root element is <{}>, expected <polycomConfig>",
                root.tag_name().name()
            ),
        });
        return out;
    }
    for node in root.descendants().filter(|n| n.is_element()) {
        for attr in node.attributes() {
            if attr.namespace().is_some() {
                continue;
            }
            out.params.push(RawParam {
                key: attr.name().to_string(),
                value: attr.value().to_string(),
                location: Location::File {
                    path: path.clone(),
                    line: doc.text_pos_at(attr.range().start).row,
                },
            });
        }
    }
    out
}
