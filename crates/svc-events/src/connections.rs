//! Connections (how to authorize against an HTTP endpoint; secrets sealed at rest and never
//! returned) and API destinations (an endpoint, a method and a rate limit, behind a connection).

use citadel_api::{AwsError, RequestContext};
use citadel_model::Timestamp;
use citadel_model::events as m;
use citadel_store::Expect;

use crate::Events;
use crate::bus::now_ms;
use crate::errors::{self, already_exists, not_found, validation};
use crate::records::{
    self, ApiDestinationRecord, ConnectionAuth, ConnectionRecord, HttpParams, Param,
};
use crate::rules::{decode_token, encode_token};

/// EventBridge's default InvocationRateLimitPerSecond.
pub const DEFAULT_RATE_LIMIT: i32 = 300;

fn account(ctx: &RequestContext) -> &str {
    &ctx.principal.account_id
}

fn ts(ms: i64) -> Option<Timestamp> {
    Some(Timestamp::from_epoch_millis(ms))
}

fn http_params(p: Option<&m::ConnectionHttpParameters>) -> HttpParams {
    let Some(p) = p else {
        return HttpParams::default();
    };
    fn one(
        key: Option<&String>,
        value: Option<&citadel_model::SensitiveString>,
        secret: Option<bool>,
    ) -> Param {
        Param {
            key: key.cloned().unwrap_or_default(),
            value: value.cloned().unwrap_or_default(),
            secret: secret.unwrap_or(false),
        }
    }
    HttpParams {
        headers: p
            .header_parameters
            .iter()
            .flatten()
            .map(|h| one(h.key.as_ref(), h.value.as_ref(), h.is_value_secret))
            .collect(),
        query: p
            .query_string_parameters
            .iter()
            .flatten()
            .map(|q| one(q.key.as_ref(), q.value.as_ref(), q.is_value_secret))
            .collect(),
        body: p
            .body_parameters
            .iter()
            .flatten()
            .map(|b| one(b.key.as_ref(), b.value.as_ref(), b.is_value_secret))
            .collect(),
    }
}

/// The parameters as Describe shows them: secret values left out, as EventBridge does.
fn describe_params(p: &HttpParams) -> Option<m::ConnectionHttpParameters> {
    if p.headers.is_empty() && p.query.is_empty() && p.body.is_empty() {
        return None;
    }
    let shown = |param: &Param| (!param.secret).then(|| param.value.clone());
    Some(m::ConnectionHttpParameters {
        header_parameters: Some(
            p.headers
                .iter()
                .map(|h| m::ConnectionHeaderParameter {
                    key: Some(h.key.clone()),
                    value: shown(h),
                    is_value_secret: Some(h.secret),
                })
                .collect(),
        ),
        query_string_parameters: Some(
            p.query
                .iter()
                .map(|q| m::ConnectionQueryStringParameter {
                    key: Some(q.key.clone()),
                    value: shown(q),
                    is_value_secret: Some(q.secret),
                })
                .collect(),
        ),
        body_parameters: Some(
            p.body
                .iter()
                .map(|b| m::ConnectionBodyParameter {
                    key: Some(b.key.clone()),
                    value: shown(b),
                    is_value_secret: Some(b.secret),
                })
                .collect(),
        ),
    })
}

fn check_endpoint(url: &str, member: &str) -> Result<(), AwsError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| validation(format!("{member} {url} is not a valid URL.")))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https" | "http"), Some(h)) if !h.is_empty() => Ok(()),
        _ => Err(validation(format!(
            "{member} {url} is not valid: it must be an http:// or https:// URL with a host."
        ))),
    }
}

/// The connection name in a connection ARN `…:connection/<name>/<id>`.
fn connection_name(arn: &str) -> Option<&str> {
    arn.splitn(6, ':')
        .nth(5)?
        .strip_prefix("connection/")?
        .split('/')
        .next()
}

impl Events {
    async fn load_connection(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Option<citadel_store::Versioned<ConnectionRecord>>, AwsError> {
        self.bus
            .store
            .get_json_versioned(&records::connection_key(&ctx.region, account(ctx), name))
            .await
            .map_err(errors::store)
    }

    pub(crate) async fn create_connection(
        &self,
        ctx: &RequestContext,
        req: m::CreateConnectionRequest,
    ) -> Result<m::CreateConnectionResponse, AwsError> {
        let name = req.name.unwrap_or_default();
        if req.invocation_connectivity_parameters.is_some() {
            return Err(validation(
                "InvocationConnectivityParameters (private endpoints) are not supported by Citadel.",
            ));
        }
        if req.kms_key_identifier.is_some() {
            return Err(validation(
                "KmsKeyIdentifier is not supported: Citadel seals connection secrets with its own barrier.",
            ));
        }
        let auth_type = req.authorization_type.unwrap_or_default();
        let params = req.auth_parameters.unwrap_or_default();
        if params.connectivity_parameters.is_some() {
            return Err(validation(
                "ConnectivityParameters (private endpoints) are not supported by Citadel.",
            ));
        }
        let given = [
            ("BASIC", params.basic_auth_parameters.is_some()),
            (
                "OAUTH_CLIENT_CREDENTIALS",
                params.o_auth_parameters.is_some(),
            ),
            ("API_KEY", params.api_key_auth_parameters.is_some()),
        ];
        if given.iter().filter(|(_, set)| *set).count() != 1
            || !given.iter().any(|(t, set)| *set && *t == auth_type)
        {
            return Err(validation(format!(
                "AuthParameters must contain exactly the parameters of AuthorizationType {auth_type}: BasicAuthParameters for BASIC, OAuthParameters for OAUTH_CLIENT_CREDENTIALS, ApiKeyAuthParameters for API_KEY."
            )));
        }
        let missing = |member: &str| validation(format!("{member} must be specified."));
        let auth = if let Some(p) = params.api_key_auth_parameters {
            ConnectionAuth::ApiKey {
                name: p.api_key_name.ok_or_else(|| missing("ApiKeyName"))?,
                value: p.api_key_value.ok_or_else(|| missing("ApiKeyValue"))?,
            }
        } else if let Some(p) = params.basic_auth_parameters {
            ConnectionAuth::Basic {
                username: p.username.ok_or_else(|| missing("Username"))?,
                password: p.password.ok_or_else(|| missing("Password"))?,
            }
        } else if let Some(p) = params.o_auth_parameters {
            let client = p
                .client_parameters
                .ok_or_else(|| missing("ClientParameters"))?;
            let endpoint = p
                .authorization_endpoint
                .ok_or_else(|| missing("AuthorizationEndpoint"))?;
            check_endpoint(&endpoint, "AuthorizationEndpoint")?;
            ConnectionAuth::OAuthClientCredentials {
                client_id: client.client_id.ok_or_else(|| missing("ClientID"))?,
                client_secret: client
                    .client_secret
                    .ok_or_else(|| missing("ClientSecret"))?,
                authorization_endpoint: endpoint,
                http_method: p.http_method.ok_or_else(|| missing("HttpMethod"))?,
                oauth_http: http_params(p.o_auth_http_parameters.as_ref()),
            }
        } else {
            return Err(missing("AuthParameters"));
        };
        let state = match auth {
            ConnectionAuth::OAuthClientCredentials { .. } => "AUTHORIZING",
            _ => "AUTHORIZED",
        };
        let now = now_ms();
        let record = ConnectionRecord {
            arn: format!(
                "arn:aws:events:{}:{}:connection/{name}/{}",
                ctx.region,
                account(ctx),
                uuid::Uuid::new_v4()
            ),
            name: name.clone(),
            description: req.description,
            authorization_type: auth_type,
            auth,
            invocation_http: http_params(params.invocation_http_parameters.as_ref()),
            state: state.to_owned(),
            state_reason: None,
            created_ms: now,
            modified_ms: now,
            authorized_ms: (state == "AUTHORIZED").then_some(now),
        };
        let key = records::connection_key(&ctx.region, account(ctx), &name);
        match self.bus.store.put_json(&key, &record, Expect::Absent).await {
            Ok(_) => {}
            Err(citadel_store::StoreError::Conflict { .. }) => {
                return Err(already_exists(format!("Connection {name} already exists.")));
            }
            Err(e) => return Err(errors::store(e)),
        }
        Ok(m::CreateConnectionResponse {
            connection_arn: Some(record.arn),
            connection_state: Some(record.state),
            creation_time: ts(now),
            last_modified_time: ts(now),
        })
    }

    pub(crate) async fn describe_connection(
        &self,
        ctx: &RequestContext,
        req: m::DescribeConnectionRequest,
    ) -> Result<m::DescribeConnectionResponse, AwsError> {
        let name = req.name.unwrap_or_default();
        let c = self
            .load_connection(ctx, &name)
            .await?
            .ok_or_else(|| {
                not_found(format!(
                    "Failed to describe the connection(s). Connection '{name}' does not exist."
                ))
            })?
            .value;
        let mut auth = m::ConnectionAuthResponseParameters {
            invocation_http_parameters: describe_params(&c.invocation_http),
            ..Default::default()
        };
        match &c.auth {
            ConnectionAuth::ApiKey { name, .. } => {
                auth.api_key_auth_parameters = Some(m::ConnectionApiKeyAuthResponseParameters {
                    api_key_name: Some(name.clone()),
                });
            }
            ConnectionAuth::Basic { username, .. } => {
                auth.basic_auth_parameters = Some(m::ConnectionBasicAuthResponseParameters {
                    username: Some(username.clone()),
                });
            }
            ConnectionAuth::OAuthClientCredentials {
                client_id,
                authorization_endpoint,
                http_method,
                oauth_http,
                ..
            } => {
                auth.o_auth_parameters = Some(m::ConnectionOAuthResponseParameters {
                    client_parameters: Some(m::ConnectionOAuthClientResponseParameters {
                        client_id: Some(client_id.clone()),
                    }),
                    authorization_endpoint: Some(authorization_endpoint.clone()),
                    http_method: Some(http_method.clone()),
                    o_auth_http_parameters: describe_params(oauth_http),
                });
            }
        }
        Ok(m::DescribeConnectionResponse {
            connection_arn: Some(c.arn),
            name: Some(c.name),
            description: c.description,
            connection_state: Some(c.state),
            state_reason: c.state_reason,
            authorization_type: Some(c.authorization_type),
            auth_parameters: Some(auth),
            creation_time: ts(c.created_ms),
            last_modified_time: ts(c.modified_ms),
            last_authorized_time: c.authorized_ms.and_then(ts),
            ..Default::default()
        })
    }

    pub(crate) async fn delete_connection(
        &self,
        ctx: &RequestContext,
        req: m::DeleteConnectionRequest,
    ) -> Result<m::DeleteConnectionResponse, AwsError> {
        let name = req.name.unwrap_or_default();
        let current = self.load_connection(ctx, &name).await?.ok_or_else(|| {
            not_found(format!(
                "Failed to delete the connection. Connection '{name}' does not exist."
            ))
        })?;
        let key = records::connection_key(&ctx.region, account(ctx), &name);
        self.bus
            .store
            .delete(&key, Expect::Version(current.version))
            .await
            .map_err(errors::store)?;
        let c = current.value;
        Ok(m::DeleteConnectionResponse {
            connection_arn: Some(c.arn),
            connection_state: Some("DELETING".to_owned()),
            creation_time: ts(c.created_ms),
            last_modified_time: ts(now_ms()),
            last_authorized_time: c.authorized_ms.and_then(ts),
        })
    }

    pub(crate) async fn list_connections(
        &self,
        ctx: &RequestContext,
        req: m::ListConnectionsRequest,
    ) -> Result<m::ListConnectionsResponse, AwsError> {
        let base = records::connections_prefix(&ctx.region, account(ctx));
        let (page, next) = self
            .page::<ConnectionRecord>(&base, req.name_prefix, req.next_token, req.limit, |c| {
                req.connection_state.as_deref().is_none_or(|s| s == c.state)
            })
            .await?;
        Ok(m::ListConnectionsResponse {
            connections: Some(
                page.into_iter()
                    .map(|c| m::Connection {
                        connection_arn: Some(c.arn),
                        name: Some(c.name),
                        connection_state: Some(c.state),
                        state_reason: c.state_reason,
                        authorization_type: Some(c.authorization_type),
                        creation_time: ts(c.created_ms),
                        last_modified_time: ts(c.modified_ms),
                        last_authorized_time: c.authorized_ms.and_then(ts),
                    })
                    .collect(),
            ),
            next_token: next,
        })
    }

    /// One page of records under `base` + `name_prefix` that pass `keep`, with the next token.
    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        name_prefix: Option<String>,
        token: Option<String>,
        limit: Option<i32>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<(Vec<T>, Option<String>), AwsError> {
        let limit = limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let prefix = format!("{base}{}", name_prefix.unwrap_or_default());
        let mut after = token
            .as_deref()
            .map(decode_token)
            .transpose()?
            .map(|n| format!("{base}{n}"));
        let mut out = Vec::new();
        let mut out_last_key: Option<String> = None;
        loop {
            let page = self
                .bus
                .store
                .list(&prefix, after.as_deref(), 100)
                .await
                .map_err(errors::store)?;
            let full = page.len() == 100;
            for (key, record) in page {
                let value: T = serde_json::from_slice(&record.value).map_err(|e| {
                    tracing::error!(%key, error = %e, "cannot decode a stored record");
                    errors::internal()
                })?;
                after = Some(key.clone());
                if !keep(&value) {
                    continue;
                }
                if out.len() == limit {
                    // There is at least one more: the token resumes after the last one returned.
                    let last = out_last_key.take().unwrap_or_default();
                    return Ok((out, Some(encode_token(&last))));
                }
                out_last_key = Some(key.strip_prefix(base).unwrap_or_default().to_owned());
                out.push(value);
            }
            if !full {
                return Ok((out, None));
            }
        }
    }

    pub(crate) async fn create_api_destination(
        &self,
        ctx: &RequestContext,
        req: m::CreateApiDestinationRequest,
    ) -> Result<m::CreateApiDestinationResponse, AwsError> {
        let name = req.name.unwrap_or_default();
        let connection_arn = req.connection_arn.unwrap_or_default();
        let endpoint = req.invocation_endpoint.unwrap_or_default();
        check_endpoint(&endpoint, "InvocationEndpoint")?;
        let conn_name = connection_name(&connection_arn).unwrap_or_default();
        let conn = self.load_connection(ctx, conn_name).await?;
        if conn.as_ref().is_none_or(|c| c.value.arn != connection_arn) {
            return Err(not_found(format!(
                "Connection '{connection_arn}' does not exist."
            )));
        }
        let now = now_ms();
        let record = ApiDestinationRecord {
            arn: format!(
                "arn:aws:events:{}:{}:api-destination/{name}/{}",
                ctx.region,
                account(ctx),
                uuid::Uuid::new_v4()
            ),
            name: name.clone(),
            description: req.description,
            connection_arn,
            invocation_endpoint: endpoint,
            http_method: req.http_method.unwrap_or_default(),
            rate_limit_per_second: req
                .invocation_rate_limit_per_second
                .unwrap_or(DEFAULT_RATE_LIMIT),
            created_ms: now,
            modified_ms: now,
        };
        let key = records::destination_key(&ctx.region, account(ctx), &name);
        match self.bus.store.put_json(&key, &record, Expect::Absent).await {
            Ok(_) => {}
            Err(citadel_store::StoreError::Conflict { .. }) => {
                return Err(already_exists(format!(
                    "An api-destination '{name}' already exists."
                )));
            }
            Err(e) => return Err(errors::store(e)),
        }
        Ok(m::CreateApiDestinationResponse {
            api_destination_arn: Some(record.arn),
            api_destination_state: Some("ACTIVE".to_owned()),
            creation_time: ts(now),
            last_modified_time: ts(now),
        })
    }

    async fn load_destination(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<citadel_store::Versioned<ApiDestinationRecord>, AwsError> {
        self.bus
            .store
            .get_json_versioned(&records::destination_key(&ctx.region, account(ctx), name))
            .await
            .map_err(errors::store)?
            .ok_or_else(|| not_found(format!("An api-destination '{name}' does not exist.")))
    }

    pub(crate) async fn describe_api_destination(
        &self,
        ctx: &RequestContext,
        req: m::DescribeApiDestinationRequest,
    ) -> Result<m::DescribeApiDestinationResponse, AwsError> {
        let d = self
            .load_destination(ctx, req.name.as_deref().unwrap_or_default())
            .await?
            .value;
        Ok(m::DescribeApiDestinationResponse {
            api_destination_arn: Some(d.arn),
            name: Some(d.name),
            description: d.description,
            api_destination_state: Some("ACTIVE".to_owned()),
            connection_arn: Some(d.connection_arn),
            invocation_endpoint: Some(d.invocation_endpoint),
            http_method: Some(d.http_method),
            invocation_rate_limit_per_second: Some(d.rate_limit_per_second),
            creation_time: ts(d.created_ms),
            last_modified_time: ts(d.modified_ms),
        })
    }

    pub(crate) async fn delete_api_destination(
        &self,
        ctx: &RequestContext,
        req: m::DeleteApiDestinationRequest,
    ) -> Result<m::DeleteApiDestinationResponse, AwsError> {
        let name = req.name.unwrap_or_default();
        let current = self.load_destination(ctx, &name).await?;
        self.bus
            .store
            .delete(
                &records::destination_key(&ctx.region, account(ctx), &name),
                Expect::Version(current.version),
            )
            .await
            .map_err(errors::store)?;
        Ok(m::DeleteApiDestinationResponse {})
    }

    pub(crate) async fn list_api_destinations(
        &self,
        ctx: &RequestContext,
        req: m::ListApiDestinationsRequest,
    ) -> Result<m::ListApiDestinationsResponse, AwsError> {
        let base = records::destinations_prefix(&ctx.region, account(ctx));
        let (page, next) = self
            .page::<ApiDestinationRecord>(&base, req.name_prefix, req.next_token, req.limit, |d| {
                req.connection_arn
                    .as_deref()
                    .is_none_or(|c| c == d.connection_arn)
            })
            .await?;
        Ok(m::ListApiDestinationsResponse {
            api_destinations: Some(
                page.into_iter()
                    .map(|d| m::ApiDestination {
                        api_destination_arn: Some(d.arn),
                        name: Some(d.name),
                        api_destination_state: Some("ACTIVE".to_owned()),
                        connection_arn: Some(d.connection_arn),
                        invocation_endpoint: Some(d.invocation_endpoint),
                        http_method: Some(d.http_method),
                        invocation_rate_limit_per_second: Some(d.rate_limit_per_second),
                        creation_time: ts(d.created_ms),
                        last_modified_time: ts(d.modified_ms),
                    })
                    .collect(),
            ),
            next_token: next,
        })
    }
}
