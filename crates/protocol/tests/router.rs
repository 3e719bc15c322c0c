#![allow(clippy::unwrap_used, clippy::panic)] // test helpers may fail loudly

//! Routing and rendering against small hand-made specs (the real ones are generated and tested
//! end to end through the server).

use bytes::Bytes;
use citadel_api::{
    AwsError, ErrorSpec, MessageField, OperationInput, OperationOutput, OperationSpec, Protocol,
    ServiceSpec,
};
use citadel_protocol::{Router, WireRequest, render_error, render_success};

const fn op(name: &'static str, method: &'static str, uri: &'static str) -> OperationSpec {
    OperationSpec {
        name,
        http_method: method,
        request_uri: uri,
        input: None,
        output: None,
        errors: &[],
    }
}

static JSON_SVC: ServiceSpec = ServiceSpec {
    name: "kms",
    signing_name: "kms",
    endpoint_prefix: "kms",
    protocol: Protocol::AwsJson1_1,
    target_prefix: Some("TrentService"),
    api_version: "2014-11-01",
    default_message_field: MessageField::Lower,
    operations: &[op("Decrypt", "POST", "/"), op("Encrypt", "POST", "/")],
    errors: &[ErrorSpec {
        code: "NotFoundException",
        http_status: 400,
        server_fault: false,
        message_field: Some(MessageField::Upper),
    }],
};

static QUERY_SVC: ServiceSpec = ServiceSpec {
    name: "sts",
    signing_name: "sts",
    endpoint_prefix: "sts",
    protocol: Protocol::AwsQuery,
    target_prefix: None,
    api_version: "2011-06-15",
    default_message_field: MessageField::Upper,
    operations: &[op("GetCallerIdentity", "POST", "/")],
    errors: &[],
};

static REST_SVC: ServiceSpec = ServiceSpec {
    name: "guardduty",
    signing_name: "guardduty",
    endpoint_prefix: "guardduty",
    protocol: Protocol::RestJson1,
    target_prefix: None,
    api_version: "2017-11-28",
    default_message_field: MessageField::Lower,
    operations: &[
        op("GetDetector", "GET", "/detector/{detectorId}"),
        op("ListDetectors", "GET", "/detector"),
    ],
    errors: &[],
};

fn router() -> Router {
    Router::new(&[&JSON_SVC, &QUERY_SVC, &REST_SVC])
}

struct Req {
    method: http::Method,
    path: &'static str,
    query: &'static str,
    headers: http::HeaderMap,
    body: Bytes,
    scope: Option<&'static str>,
}

impl Req {
    fn new(method: http::Method, path: &'static str) -> Self {
        Req {
            method,
            path,
            query: "",
            headers: http::HeaderMap::new(),
            body: Bytes::new(),
            scope: None,
        }
    }
    fn header(mut self, k: &'static str, v: &str) -> Self {
        self.headers.insert(k, v.parse().unwrap());
        self
    }
    fn body(mut self, b: &'static str) -> Self {
        self.body = Bytes::from_static(b.as_bytes());
        self
    }
    fn wire(&self) -> WireRequest<'_> {
        WireRequest {
            method: &self.method,
            path: self.path,
            query: self.query,
            headers: &self.headers,
            body: &self.body,
            scope_service: self.scope,
        }
    }
}

fn kms(target: &str) -> Req {
    Req::new(http::Method::POST, "/")
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.1")
}

#[test]
fn aws_json_routes_by_target() {
    let r = router();
    let req = kms("TrentService.Encrypt").body(r#"{"KeyId":"k"}"#);
    let route = r.route(&req.wire()).unwrap();
    assert_eq!(route.service.name, "kms");
    assert_eq!(route.operation.name, "Encrypt");
    assert!(matches!(route.input, OperationInput::Json(b) if &b[..] == br#"{"KeyId":"k"}"#));

    // An empty body is an empty input object.
    let route = r.route(&kms("TrentService.Decrypt").wire()).unwrap();
    assert!(matches!(route.input, OperationInput::Json(b) if &b[..] == b"{}"));
}

#[test]
fn aws_json_rejections() {
    let r = router();
    let e = r.route(&kms("TrentService.Nope").wire()).unwrap_err();
    assert_eq!(e.error.code, "UnknownOperationException");
    assert_eq!(e.error.status, 400);
    assert_eq!(e.service.map(|s| s.name), Some("kms"));

    let e = r.route(&kms("Unknown_2020.Encrypt").wire()).unwrap_err();
    assert_eq!(e.error.code, "UnknownOperationException");
    assert!(e.service.is_none());

    let e = r
        .route(&kms("TrentService.Encrypt").body("{not json").wire())
        .unwrap_err();
    assert_eq!(e.error.code, "SerializationException");

    let e = r
        .route(
            &kms("TrentService.Encrypt")
                .header("content-type", "text/plain")
                .body("{}")
                .wire(),
        )
        .unwrap_err();
    assert_eq!(e.error.code, "UnknownOperationException");
    assert!(e.error.message.unwrap().contains("text/plain"));
}

#[test]
fn aws_query_routes_by_version_or_scope() {
    let r = router();
    let form = Req::new(http::Method::POST, "/")
        .header(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )
        .body("Action=GetCallerIdentity&Version=2011-06-15&Extra=a%20b");
    let route = r.route(&form.wire()).unwrap();
    assert_eq!(route.service.name, "sts");
    assert_eq!(route.operation.name, "GetCallerIdentity");
    match route.input {
        OperationInput::Query(p) => assert_eq!(p, vec![("Extra".into(), "a b".into())]),
        other => panic!("{other:?}"),
    }

    let mut scoped = Req::new(http::Method::POST, "/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity");
    scoped.scope = Some("sts");
    assert_eq!(r.route(&scoped.wire()).unwrap().service.name, "sts");

    let bad = Req::new(http::Method::POST, "/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=Frobnicate&Version=2011-06-15");
    let e = r.route(&bad.wire()).unwrap_err();
    assert_eq!(e.error.code, "InvalidAction");
    assert_eq!(
        e.error.message.as_deref(),
        Some("Could not find operation Frobnicate for version 2011-06-15")
    );
}

#[test]
fn rest_json_routes_by_method_and_path() {
    let r = router();
    let route = r
        .route(&Req::new(http::Method::GET, "/detector/abc123").wire())
        .unwrap();
    assert_eq!(route.operation.name, "GetDetector");
    match route.input {
        OperationInput::Rest { labels, .. } => assert_eq!(labels["detectorId"], "abc123"),
        other => panic!("{other:?}"),
    }
    let route = r
        .route(&Req::new(http::Method::GET, "/detector").wire())
        .unwrap();
    assert_eq!(route.operation.name, "ListDetectors");
    let e = r
        .route(&Req::new(http::Method::DELETE, "/detector").wire())
        .unwrap_err();
    assert_eq!(e.error.status, 404);
}

#[test]
fn json_errors_use_the_service_casing() {
    let e = AwsError::new(400, "NotFoundException", "gone");
    let resp = render_error(Protocol::AwsJson1_1, Some(&JSON_SVC), &e, "rid-1");
    assert_eq!(resp.status, 400);
    let v: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"__type": "NotFoundException", "Message": "gone"})
    );
    assert!(resp.headers.contains(&("x-amzn-RequestId", "rid-1".into())));
    assert!(
        resp.headers
            .contains(&("x-amzn-ErrorType", "NotFoundException".into()))
    );
    assert!(
        resp.headers
            .contains(&("content-type", "application/x-amz-json-1.1".into()))
    );

    let e = AwsError::validation("1 validation error detected: x");
    let v: serde_json::Value =
        serde_json::from_slice(&render_error(Protocol::AwsJson1_1, Some(&JSON_SVC), &e, "r").body)
            .unwrap();
    assert_eq!(v["message"], "1 validation error detected: x");

    let e = AwsError::without_message(400, "InvalidCiphertextException");
    let v: serde_json::Value =
        serde_json::from_slice(&render_error(Protocol::AwsJson1_1, Some(&JSON_SVC), &e, "r").body)
            .unwrap();
    assert_eq!(
        v,
        serde_json::json!({"__type": "InvalidCiphertextException"})
    );
}

#[test]
fn query_envelopes() {
    let op = QUERY_SVC.operation("GetCallerIdentity").unwrap();
    let ok = render_success(
        &QUERY_SVC,
        op,
        OperationOutput::QueryXml("<Account>1</Account>".into()),
        "rid<&>",
    );
    let body = std::str::from_utf8(&ok.body).unwrap();
    assert!(body.starts_with(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    assert!(
        body.contains("<GetCallerIdentityResult><Account>1</Account></GetCallerIdentityResult>")
    );
    assert!(body.contains("<RequestId>rid&lt;&amp;&gt;</RequestId>"));

    let e = AwsError::new(403, "SignatureDoesNotMatch", "a < b");
    let resp = render_error(Protocol::AwsQuery, Some(&QUERY_SVC), &e, "rid");
    let body = std::str::from_utf8(&resp.body).unwrap();
    assert_eq!(resp.status, 403);
    assert!(body.contains("<Type>Sender</Type>"));
    assert!(body.contains("<Code>SignatureDoesNotMatch</Code>"));
    assert!(body.contains("<Message>a &lt; b</Message>"));
    let resp = render_error(Protocol::AwsQuery, None, &AwsError::internal(), "rid");
    assert!(
        std::str::from_utf8(&resp.body)
            .unwrap()
            .contains("<Type>Receiver</Type>")
    );
}
