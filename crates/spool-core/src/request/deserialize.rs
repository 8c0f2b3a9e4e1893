//! Typed deserialization of request fields, every error naming the parameter
//! at fault by its full path (`input[2].content[0].image_url`).
//!
//! Request fields are parsed into typed serde structs and enums with
//! `serde_path_to_error`. One shape needs help: the API's unions are
//! *internally* tagged (`{"type": "input_image", …}`), and serde reads those
//! through a buffer that no path tracker can see into
//! (dtolnay/path-to-error#1). [`deserialize_tagged`] therefore moves the tag
//! out and reads the object as the *externally* tagged form of the same enum
//! (`{"input_image": {…}}`), whose variants the tracker follows.

use super::RequestError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use serde_path_to_error::Segment;
use std::fmt::Write;

/// Deserializes `value`, the request parameter at path `at`, as a `T`.
pub(super) fn deserialize_at<T: DeserializeOwned>(
    value: Value,
    at: &str,
) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(value).map_err(|e| error_at(at, e, 0))
}

/// Deserializes the object `fields` (without its `type`) as the variant
/// `tag` of the externally tagged enum `T`; `Ok(None)` when `T` has no such
/// variant, so that the caller can say which tags it takes.
pub(super) fn deserialize_tagged<T: DeserializeOwned>(
    tag: &str,
    fields: Map<String, Value>,
    at: &str,
) -> Result<Option<T>, RequestError> {
    let tagged = Value::Object(Map::from_iter([(tag.to_owned(), Value::Object(fields))]));
    match serde_path_to_error::deserialize(tagged) {
        Ok(value) => Ok(Some(value)),
        // Only the variant's name is read at the root: an error there is
        // an unknown tag.
        Err(e) if e.path().iter().next().is_none() => Ok(None),
        // The first segment is the tag, which is not in the request's path.
        Err(e) => Err(error_at(at, e, 1)),
    }
}

/// Removes `type` from an object: its tag. `implied` is the tag of an object
/// that has none (a message given by its `role` alone).
pub(super) fn take_tag(
    fields: &mut Map<String, Value>,
    at: &str,
    implied: Option<&str>,
) -> Result<String, RequestError> {
    match (fields.remove("type"), implied) {
        (Some(Value::String(tag)), _) => Ok(tag),
        (None, Some(tag)) => Ok(tag.to_owned()),
        (None, None) => Err(RequestError::missing(format!("{at}.type"))),
        (Some(_), _) => Err(RequestError::invalid(
            format!("{at}.type"),
            format!("{at}.type must be a string."),
        )),
    }
}

/// The error of a field at `at`, skipping the first `skip` segments of the
/// path serde saw.
fn error_at(
    at: &str,
    e: serde_path_to_error::Error<serde_json::Error>,
    skip: usize,
) -> RequestError {
    let mut param = at.to_owned();
    for segment in e.path().iter().skip(skip) {
        // Writing to a String cannot fail.
        let _ = match segment {
            Segment::Seq { index } => write!(param, "[{index}]"),
            Segment::Map { key } | Segment::Enum { variant: key } => write!(param, ".{key}"),
            Segment::Unknown => Ok(()),
        };
    }
    let inner = e.into_inner().to_string();
    // serde reports a missing field at the struct that lacks it; the
    // parameter at fault is the field. The wording is serde's own
    // (`de::Error::missing_field`), pinned by the tests of this module.
    if let Some(field) = inner
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return RequestError::missing(format!("{param}.{field}"));
    }
    RequestError::invalid(
        param.clone(),
        format!("Invalid value for '{param}': {inner}."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    // Only the errors of these types are looked at.
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "snake_case")]
    #[expect(dead_code, reason = "built by serde, never read")]
    enum Shape {
        Circle { radius: f64 },
        Polygon { points: Vec<Point> },
    }

    #[derive(Debug, Deserialize)]
    #[expect(dead_code, reason = "built by serde, never read")]
    struct Point {
        x: f64,
    }

    fn tagged(v: Value) -> Result<Option<Shape>, RequestError> {
        let Value::Object(mut fields) = v else {
            panic!("an object")
        };
        let tag = take_tag(&mut fields, "shapes[3]", None)?;
        deserialize_tagged(&tag, fields, "shapes[3]")
    }

    #[test]
    fn a_nested_type_error_is_named_by_its_full_path() {
        let e = tagged(json!({"type": "polygon", "points": [{"x": 1}, {"x": "one"}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("shapes[3].points[1].x"));
        assert_eq!(e.code, "invalid_value");
        assert!(
            e.message
                .starts_with("Invalid value for 'shapes[3].points[1].x': invalid type")
        );
    }

    #[test]
    fn a_missing_field_is_named_as_the_field_not_its_object() {
        let e = tagged(json!({"type": "polygon", "points": [{}]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("shapes[3].points[0].x"));
        assert_eq!(e.code, "missing_required_parameter");
        assert_eq!(
            e.message,
            "Missing required parameter: 'shapes[3].points[0].x'."
        );
        let e = tagged(json!({"type": "circle"})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("shapes[3].radius"));
    }

    #[test]
    fn an_unknown_tag_is_left_to_the_caller_and_a_bad_tag_is_named() {
        assert!(tagged(json!({"type": "blob"})).unwrap().is_none());
        let e = tagged(json!({"type": 5})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("shapes[3].type"));
        let e = tagged(json!({"radius": 1})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("shapes[3].type"));
        assert_eq!(e.code, "missing_required_parameter");
    }

    #[test]
    fn a_plain_value_error_keeps_its_path() {
        let e = deserialize_at::<Vec<Point>>(json!([{"x": 0}, {"x": null}]), "points").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("points[1].x"));
    }
}
