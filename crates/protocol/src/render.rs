use bytes::Bytes;
use citadel_api::{AwsError, MessageField, OperationOutput, OperationSpec, Protocol, ServiceSpec};

use crate::xml;

/// A rendered HTTP response. The server adds transport headers (`x-amzn-RequestId` is set
/// here because every protocol carries it).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// The XML namespace awsQuery responses carry, e.g. `https://sts.amazonaws.com/doc/2011-06-15/`.
fn query_namespace(service: &ServiceSpec) -> String {
    format!(
        "https://{}.amazonaws.com/doc/{}/",
        service.endpoint_prefix, service.api_version
    )
}

pub fn render_success(
    service: &ServiceSpec,
    operation: &OperationSpec,
    output: OperationOutput,
    request_id: &str,
) -> Response {
    let mut headers = vec![("x-amzn-RequestId", request_id.to_owned())];
    let body = match output {
        OperationOutput::Json(value) => {
            headers.push((
                "content-type",
                service.protocol.json_content_type().to_owned(),
            ));
            // Serializing a serde_json::Value cannot fail (all keys are strings).
            Bytes::from(serde_json::to_vec(&value).unwrap_or_default())
        }
        OperationOutput::QueryXml(inner) => {
            headers.push(("content-type", "text/xml".to_owned()));
            let name = operation.name;
            let mut out = String::with_capacity(inner.len() + 256);
            out.push_str(&format!(
                "<{name}Response xmlns=\"{}\">\n  <{name}Result>",
                query_namespace(service)
            ));
            out.push_str(&inner);
            out.push_str(&format!(
                "</{name}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{name}Response>\n",
                xml::escape(request_id)
            ));
            Bytes::from(out)
        }
    };
    Response {
        status: 200,
        headers,
        body,
    }
}

/// Renders `error` in the envelope of `protocol`. `service` decides the message member's casing
/// (`message` or `Message`) and the awsQuery namespace; it is `None` when the request could not
/// be placed at all.
pub fn render_error(
    protocol: Protocol,
    service: Option<&ServiceSpec>,
    error: &AwsError,
    request_id: &str,
) -> Response {
    let mut headers = vec![
        ("x-amzn-RequestId", request_id.to_owned()),
        ("x-amzn-ErrorType", error.code.to_string()),
    ];
    let body = match protocol {
        Protocol::AwsJson1_0 | Protocol::AwsJson1_1 | Protocol::RestJson1 => {
            headers.push(("content-type", protocol.json_content_type().to_owned()));
            let field = service
                .map(|s| s.message_field_for(&error.code))
                .unwrap_or(MessageField::Lower);
            let mut obj = serde_json::Map::new();
            obj.insert("__type".into(), error.code.to_string().into());
            if let Some(message) = &error.message {
                obj.insert(field.as_str().into(), message.clone().into());
            }
            Bytes::from(serde_json::to_vec(&obj).unwrap_or_default())
        }
        Protocol::AwsQuery => {
            headers.push(("content-type", "text/xml".to_owned()));
            let kind = if error.is_server_fault() {
                "Receiver"
            } else {
                "Sender"
            };
            let xmlns = service
                .map(|s| format!(" xmlns=\"{}\"", query_namespace(s)))
                .unwrap_or_default();
            let message = error
                .message
                .as_deref()
                .map(|m| format!("\n    <Message>{}</Message>", xml::escape(m)))
                .unwrap_or_default();
            Bytes::from(format!(
                "<ErrorResponse{xmlns}>\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>{message}\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
                xml::escape(&error.code),
                xml::escape(request_id)
            ))
        }
    };
    Response {
        status: error.status,
        headers,
        body,
    }
}
