//! Timestamps in responses: records keep unix seconds (`created`, `updated`, `revoked`),
//! and every response that shows one also gives it as RFC 3339 text beside it
//! (`created_at`, ...), which people and most JSON tools read without conversion.

use serde_json::Value;

/// Fields holding unix seconds, and the RFC 3339 field added beside each.
const FIELDS: [(&str, &str); 3] =
    [("created", "created_at"), ("updated", "updated_at"), ("revoked", "revoked_at")];

/// Adds the RFC 3339 form beside every unix-seconds field of `v`, at any depth.
pub fn with_rfc3339(mut v: Value) -> Value {
    add(&mut v);
    v
}

fn add(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (secs, text) in FIELDS {
                if let Some(n) = map.get(secs).and_then(Value::as_i64) {
                    if !map.contains_key(text) {
                        map.insert(text.to_string(), Value::String(citecast_actors::dates::rfc3339(n)));
                    }
                }
            }
            for child in map.values_mut() {
                add(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(add),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seconds_fields_get_their_rfc3339_form_at_any_depth() {
        let v = with_rfc3339(json!({
            "customer": { "created": 0, "updated": 1_796_343_355, "name": "x" },
            "keys": [{ "created": 86_399, "revoked": null }],
        }));
        assert_eq!(v["customer"]["created_at"], "1970-01-01T00:00:00Z");
        assert_eq!(v["customer"]["updated_at"], "2026-12-04T00:15:55Z");
        assert_eq!(v["keys"][0]["created_at"], "1970-01-01T23:59:59Z");
        assert!(v["keys"][0].get("revoked_at").is_none(), "no time, no text");
        assert_eq!(v["customer"]["created"], 0, "the seconds stay");
    }
}
