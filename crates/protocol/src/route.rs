use std::collections::HashMap;

use bytes::Bytes;
use citadel_api::{AwsError, OperationInput, OperationSpec, Protocol, ServiceSpec};

use crate::rest::UriTemplate;

/// The parts of an HTTP request the router looks at. `path` and `query` are raw, as received.
#[derive(Debug)]
pub struct WireRequest<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub body: &'a Bytes,
    /// The service named in the SigV4 credential scope, when the request is signed. awsQuery
    /// and restJson1 requests carry no service name of their own, so this breaks ties.
    pub scope_service: Option<&'a str>,
}

/// A request the router understood: which service and operation, and the decoded input.
#[derive(Debug)]
pub struct Route {
    pub service: &'static ServiceSpec,
    pub operation: &'static OperationSpec,
    pub input: OperationInput,
}

/// A request the router could not place. `protocol` and `service` say how to render the error.
#[derive(Debug)]
pub struct RouteError {
    pub protocol: Protocol,
    pub service: Option<&'static ServiceSpec>,
    pub error: AwsError,
}

struct RestOperation {
    service: &'static ServiceSpec,
    operation: &'static OperationSpec,
    method: http::Method,
    template: UriTemplate,
}

/// Maps requests to (service, operation) for every service Citadel knows the model of.
pub struct Router {
    by_target_prefix: HashMap<&'static str, &'static ServiceSpec>,
    query_services: Vec<&'static ServiceSpec>,
    rest_operations: Vec<RestOperation>,
}

impl Router {
    pub fn new(specs: &[&'static ServiceSpec]) -> Self {
        let mut by_target_prefix = HashMap::new();
        let mut query_services = Vec::new();
        let mut rest_operations = Vec::new();
        for &spec in specs {
            match spec.protocol {
                Protocol::AwsJson1_0 | Protocol::AwsJson1_1 => {
                    if let Some(prefix) = spec.target_prefix {
                        by_target_prefix.insert(prefix, spec);
                    }
                }
                Protocol::AwsQuery => query_services.push(spec),
                Protocol::RestJson1 => {
                    for operation in spec.operations {
                        let Ok(method) = http::Method::from_bytes(operation.http_method.as_bytes())
                        else {
                            continue;
                        };
                        rest_operations.push(RestOperation {
                            service: spec,
                            operation,
                            method,
                            template: UriTemplate::parse(operation.request_uri),
                        });
                    }
                }
            }
        }
        // Literal segments beat labels: try the most specific templates first.
        rest_operations.sort_by_key(|r| std::cmp::Reverse(r.template.specificity()));
        Router {
            by_target_prefix,
            query_services,
            rest_operations,
        }
    }

    pub fn route(&self, req: &WireRequest<'_>) -> Result<Route, RouteError> {
        if let Some(target) = req.headers.get("x-amz-target") {
            return self.route_json(req, target);
        }
        if is_form(req.headers) || query_has_action(req.query) {
            return self.route_query(req);
        }
        self.route_rest(req)
    }

    fn route_json(
        &self,
        req: &WireRequest<'_>,
        target: &http::HeaderValue,
    ) -> Result<Route, RouteError> {
        let unknown = |service: Option<&'static ServiceSpec>, protocol: Protocol| RouteError {
            protocol,
            service,
            error: AwsError::without_message(400, "UnknownOperationException"),
        };
        let target = target.to_str().unwrap_or_default();
        let Some((prefix, op_name)) = target.rsplit_once('.') else {
            return Err(unknown(None, Protocol::AwsJson1_1));
        };
        let Some(&service) = self.by_target_prefix.get(prefix) else {
            return Err(unknown(None, Protocol::AwsJson1_1));
        };
        let Some(operation) = service.operation(op_name) else {
            return Err(unknown(Some(service), service.protocol));
        };
        if req.method != http::Method::POST {
            return Err(RouteError {
                protocol: service.protocol,
                service: Some(service),
                error: AwsError::new(
                    405,
                    "UnknownOperationException",
                    format!("{} requests must use POST.", service.name),
                ),
            });
        }
        let content_type = header_str(req.headers, "content-type");
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media_type != "application/x-amz-json-1.1" && media_type != "application/x-amz-json-1.0"
        {
            return Err(RouteError {
                protocol: service.protocol,
                service: Some(service),
                error: AwsError::new(
                    400,
                    "UnknownOperationException",
                    format!(
                        "Content-Type '{}' is not supported; {} expects '{}'.",
                        truncate(content_type, 100),
                        service.name,
                        service.protocol.json_content_type()
                    ),
                ),
            });
        }
        let body = if req.body.iter().all(u8::is_ascii_whitespace) {
            Bytes::from_static(b"{}")
        } else {
            req.body.clone()
        };
        if let Err(error) = citadel_api::json::check_object(&body) {
            return Err(RouteError {
                protocol: service.protocol,
                service: Some(service),
                error,
            });
        }
        Ok(Route {
            service,
            operation,
            input: OperationInput::Json(body),
        })
    }

    fn route_query(&self, req: &WireRequest<'_>) -> Result<Route, RouteError> {
        let mut params: Vec<(String, String)> = if is_form(req.headers) {
            form_urlencoded::parse(req.body).into_owned().collect()
        } else {
            Vec::new()
        };
        // Parameters may also come in the query string (GET, or POST with a presigned URL).
        params.extend(
            form_urlencoded::parse(req.query.as_bytes())
                .into_owned()
                .filter(|(k, _)| !k.starts_with("X-Amz-")),
        );
        let take = |params: &mut Vec<(String, String)>, name: &str| {
            params
                .iter()
                .position(|(k, _)| k == name)
                .map(|i| params.remove(i).1)
        };
        let action = take(&mut params, "Action");
        let version = take(&mut params, "Version");

        let service = self.query_service(version.as_deref(), req.scope_service);
        let error = |service: Option<&'static ServiceSpec>, error: AwsError| RouteError {
            protocol: Protocol::AwsQuery,
            service,
            error,
        };
        let Some(action) = action else {
            return Err(error(
                service,
                AwsError::new(
                    400,
                    "MissingAction",
                    "Missing Action parameter in the request.",
                ),
            ));
        };
        let Some(service) = service else {
            return Err(error(
                None,
                AwsError::new(
                    400,
                    "InvalidAction",
                    format!(
                        "Could not find operation {} for version {}",
                        truncate(&action, 100),
                        truncate(version.as_deref().unwrap_or("NO_VERSION_SPECIFIED"), 40)
                    ),
                ),
            ));
        };
        let Some(operation) = service.operation(&action) else {
            return Err(error(
                Some(service),
                AwsError::new(
                    400,
                    "InvalidAction",
                    format!(
                        "Could not find operation {} for version {}",
                        truncate(&action, 100),
                        version.as_deref().unwrap_or(service.api_version)
                    ),
                ),
            ));
        };
        Ok(Route {
            service,
            operation,
            input: OperationInput::Query(params),
        })
    }

    /// The awsQuery service a request addresses: the `Version` parameter names an API
    /// version, which identifies the service; the credential scope decides otherwise.
    fn query_service(
        &self,
        version: Option<&str>,
        scope_service: Option<&str>,
    ) -> Option<&'static ServiceSpec> {
        let by_scope = scope_service.and_then(|s| {
            self.query_services
                .iter()
                .copied()
                .find(|spec| spec.signing_name == s)
        });
        let by_version = version.and_then(|v| {
            let mut matching = self.query_services.iter().filter(|s| s.api_version == v);
            match (matching.next(), matching.next()) {
                (Some(&only), None) => Some(only),
                _ => None,
            }
        });
        by_scope.or(by_version)
    }

    fn route_rest(&self, req: &WireRequest<'_>) -> Result<Route, RouteError> {
        let path = req.path;
        let mut candidates = self
            .rest_operations
            .iter()
            .filter(|r| r.method == *req.method)
            .filter_map(|r| {
                r.template
                    .matches(path, req.query)
                    .map(|labels| (r, labels))
            });
        let scope = req.scope_service;
        let found = match scope {
            Some(s) => candidates.find(|(r, _)| r.service.signing_name == s),
            None => candidates.next(),
        };
        let Some((rest, labels)) = found else {
            return Err(RouteError {
                protocol: Protocol::RestJson1,
                service: None,
                error: AwsError::new(
                    404,
                    "UnknownOperationException",
                    format!(
                        "No operation matches {} {}.",
                        req.method,
                        truncate(req.path, 200)
                    ),
                ),
            });
        };
        if !req.body.is_empty()
            && let Err(error) = citadel_api::json::check_object(req.body)
        {
            return Err(RouteError {
                protocol: Protocol::RestJson1,
                service: Some(rest.service),
                error,
            });
        }
        let query = form_urlencoded::parse(req.query.as_bytes())
            .into_owned()
            .collect();
        Ok(Route {
            service: rest.service,
            operation: rest.operation,
            input: OperationInput::Rest {
                labels,
                query,
                body: req.body.clone(),
            },
        })
    }
}

fn header_str<'a>(headers: &'a http::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

fn is_form(headers: &http::HeaderMap) -> bool {
    header_str(headers, "content-type")
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
}

fn query_has_action(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes()).any(|(k, _)| k == "Action")
}

/// Caps how much of a caller-supplied string is echoed back in an error message.
fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max_chars).collect();
        t.push('…');
        t
    }
}
