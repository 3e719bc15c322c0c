//! Decoding awsJson request bodies into typed inputs, with AWS's error for bodies that do not
//! parse. Messages name the position, never the offending value: a body can hold plaintext.

use serde::de::DeserializeOwned;

use crate::AwsError;

fn serialization_error(e: &serde_json::Error) -> AwsError {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => "Malformed JSON",
        Category::Data => "Unexpected type or value",
    };
    AwsError::serialization(format!(
        "{what} in the request body at line {} column {}.",
        e.line(),
        e.column()
    ))
}

/// Deserializes an operation input; an empty body counts as `{}`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, AwsError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| serialization_error(&e))
}

/// A response shape as an operation's JSON output. Serializing generated shapes cannot fail in
/// practice; if it did, the caller's own internal error (`internal`) is answered.
pub fn output<T: serde::Serialize>(
    value: &T,
    internal: fn() -> AwsError,
) -> Result<crate::OperationOutput, AwsError> {
    serde_json::to_value(value)
        .map(crate::OperationOutput::Json)
        .map_err(|_| internal())
}

/// The dispatch of an awsJson service: for each listed operation, decode and validate its input,
/// call the handler method `$method(ctx, request)` and serialize its output; any other operation
/// is `UnsupportedOperationException`.
#[macro_export]
macro_rules! dispatch_json {
    ($service:literal, $internal:path, $target:expr, $ctx:expr, $body:expr, $name:expr,
     { $($op:literal => $req:ty => $method:ident,)* }) => {
        match $name {
            $(
                $op => {
                    let req: $req = $crate::json::decode(&$body)?;
                    req.validate()?;
                    $crate::json::output(&$target.$method($ctx, req).await?, $internal)
                }
            )*
            other => Err($crate::AwsError::unsupported_operation($service, other)),
        }
    };
}

/// Checks that `body` is one JSON object, without building it.
pub fn check_object(body: &[u8]) -> Result<(), AwsError> {
    struct ObjectOnly;
    impl<'de> serde::Deserialize<'de> for ObjectOnly {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = ObjectOnly;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<ObjectOnly, A::Error> {
                    while map
                        .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                        .is_some()
                    {}
                    Ok(ObjectOnly)
                }
            }
            d.deserialize_map(V)
        }
    }
    serde_json::from_slice::<ObjectOnly>(body)
        .map(|_| ())
        .map_err(|e| serialization_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_pass_and_the_rest_fails_without_echoing_values() {
        assert!(check_object(br#"{"KeyId":"x","N":[1,{"a":null}]}"#).is_ok());
        for bad in [&b"{"[..], b"[1]", b"\"s\"", b"{\"a\":1}x", b"{'a':1}"] {
            let e = check_object(bad).unwrap_err();
            assert_eq!(e.code, "SerializationException");
            assert_eq!(e.status, 400);
        }
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct In {
            #[serde(rename = "N")]
            n: i32,
        }
        let e = decode::<In>(br#"{"N":"topsecret"}"#).unwrap_err();
        assert!(!e.message.unwrap().contains("topsecret"));
        assert!(decode::<In>(b"").is_err());
    }
}
