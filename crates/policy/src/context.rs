//! Tool arguments as a Cedar context: JSON values mapped to the closest
//! Cedar value, so policies can say `context.amount < 500`.

use cedar_policy::RestrictedExpression;
use serde_json::Value;

/// Deepest nesting of arguments carried into a context; deeper values are
/// left out rather than letting a model-written argument make evaluation
/// arbitrarily expensive.
const MAX_DEPTH: usize = 8;

/// Whole numbers become Longs, others a decimal (Cedar has no floats) when
/// they fit its four places and range, else a string; `null` is left out,
/// so a policy sees the attribute as absent (`context has x` is false).
pub(crate) fn value(json: &Value, depth: usize) -> Option<RestrictedExpression> {
    if depth > MAX_DEPTH {
        return None;
    }
    Some(match json {
        Value::Null => return None,
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => number(n),
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Array(items) => {
            RestrictedExpression::new_set(items.iter().filter_map(|v| value(v, depth + 1)))
        }
        Value::Object(map) => {
            let fields = map
                .iter()
                .filter_map(|(k, v)| value(v, depth + 1).map(|v| (k.clone(), v)));
            // Duplicate keys cannot occur in a JSON object map.
            RestrictedExpression::new_record(fields).ok()?
        }
    })
}

fn number(n: &serde_json::Number) -> RestrictedExpression {
    if let Some(i) = n.as_i64() {
        return RestrictedExpression::new_long(i);
    }
    match n.as_f64() {
        // Cedar decimals hold four places within about ±9.2e14.
        Some(f) if f.is_finite() && f.abs() < 9.0e14 => {
            RestrictedExpression::new_decimal(format!("{f:.4}"))
        }
        _ => RestrictedExpression::new_string(n.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_each_json_kind() {
        for input in [
            json!(5),
            json!(true),
            json!("x"),
            json!(1.5),
            json!(1e300),
            json!({"a": [1]}),
        ] {
            assert!(value(&input, 0).is_some(), "{input}");
        }
        assert!(value(&json!(null), 0).is_none());
    }

    #[test]
    fn deep_values_are_cut() {
        let mut v = json!(1);
        for _ in 0..20 {
            v = json!([v]);
        }
        assert!(value(&v, 0).is_some());
        assert!(value(&v, MAX_DEPTH + 1).is_none());
    }
}
