//! Canonical JSON: the byte string that is signed.
//!
//! Canonical form of a `serde_json::Value`: object keys sorted by their UTF-8 bytes, no
//! insignificant whitespace, strings escaped the way `serde_json` escapes them (`"`, `\`, and
//! control characters; everything else literal UTF-8), numbers as `serde_json` prints them.
//! Two JSON texts that parse to the same value have the same canonical form, whatever their
//! key order and indentation.

use serde_json::Value;

/// The canonical serialization of `value` (see the module doc).
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_value(v, out);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is deterministic and cannot fail for a &str.
    match serde_json::to_string(s) {
        Ok(escaped) => out.push_str(&escaped),
        Err(_) => out.push_str("\"\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_keys_and_drops_whitespace() {
        let a: Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "x\n"}], "a": true }"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a":true,"b":[1,{"a":"x\n","z":null}]}"#).unwrap();
        assert_eq!(
            canonical_json(&a),
            r#"{"a":true,"b":[1,{"a":"x\n","z":null}]}"#
        );
        assert_eq!(canonical_json(&a), canonical_json(&b));
    }

    #[test]
    fn unicode_is_literal_and_keys_sort_by_bytes() {
        let v: Value = serde_json::from_str(r#"{"é":"ü","Z":1,"a":2}"#).unwrap();
        assert_eq!(canonical_json(&v), "{\"Z\":1,\"a\":2,\"é\":\"ü\"}");
    }
}
