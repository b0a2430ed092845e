//! JSON text as Python's `json.dumps` writes it, so evaluation texts match hud's byte for byte.
//!
//! hud serializes the evaluation with `json.dumps(...)`: `", "` between items, `": "` after
//! keys, and every character outside printable ASCII escaped as `\uXXXX`.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io;

/// Serializes `value` the way Python's `json.dumps(value)` does with default arguments.
pub(crate) fn to_python_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut serializer)?;
    // The formatter writes only ASCII, so this cannot fail; map it anyway instead of panicking.
    String::from_utf8(out).map_err(|err| serde::ser::Error::custom(err.to_string()))
}

struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for ch in fragment.chars() {
            if (' '..='~').contains(&ch) {
                let mut buf = [0u8; 4];
                writer.write_all(ch.encode_utf8(&mut buf).as_bytes())?;
            } else {
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_json_dumps_spacing_and_escapes() {
        let value = json!({"reward": 1.0, "info": {"a": [1, 2]}, "content": "café 😀\n\u{7f}"});
        let text = to_python_json(&value).unwrap();
        assert_eq!(
            text,
            r#"{"content": "caf\u00e9 \ud83d\ude00\n\u007f", "info": {"a": [1, 2]}, "reward": 1.0}"#
        );
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
