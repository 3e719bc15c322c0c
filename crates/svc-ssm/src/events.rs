//! What Parameter Store tells the event bus: a "Parameter Store Change" event for every committed
//! create, update, delete and label change, and a "Parameter Store Policy Action" event when an
//! Expiration policy deletes a parameter — AWS's detail types and shapes (`citadel_events::shapes`).
//! Events are emitted after the change is committed; a failure to emit is logged and never
//! undoes the change.

use std::sync::Arc;

use citadel_api::{OperationOutput, RequestContext};
use citadel_events::{Event, EventError, Publisher, shapes};

use crate::Ssm;

/// The parameter names a write request names (`Name`, or `Names` for DeleteParameters).
pub fn names_in(body: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    let one = value["Name"].as_str().map(str::to_owned);
    let many = value["Names"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_else(Vec::new);
    one.into_iter().chain(many).collect()
}

impl Ssm {
    /// Connects the event bus. A second call is ignored.
    pub fn set_events(&self, publisher: Arc<dyn Publisher>) {
        let _ = self.events.set(publisher);
    }

    pub(crate) fn events_connected(&self) -> bool {
        self.events.get().is_some()
    }

    pub(crate) async fn emit(&self, event: Result<Event, EventError>) {
        let Some(bus) = self.events.get() else {
            return;
        };
        match event {
            Ok(e) => {
                if let Err(error) = bus.publish(&e).await {
                    tracing::error!(%error, detail_type = %e.detail_type, "emitting a Parameter Store event failed");
                }
            }
            Err(error) => tracing::error!(%error, "building a Parameter Store event failed"),
        }
    }

    /// The type (and description) of each named parameter that exists.
    pub(crate) async fn types_of(
        &self,
        ctx: &RequestContext,
        names: &[String],
    ) -> Vec<(String, String, Option<String>)> {
        if !self.events_connected() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Ok(Some((rec, _))) = self
                .load(&ctx.principal.account_id, &ctx.region, name)
                .await
            {
                out.push((
                    name.clone(),
                    rec.latest.param_type.clone(),
                    rec.latest.description.clone(),
                ));
            }
        }
        out
    }

    /// Emits the change events of a successful write.
    pub(crate) async fn emit_changes(
        &self,
        ctx: &RequestContext,
        operation: &str,
        names: &[String],
        before: Vec<(String, String, Option<String>)>,
        output: &OperationOutput,
    ) {
        if !self.events_connected() {
            return;
        }
        let OperationOutput::Json(out) = output else {
            return;
        };
        let (account, region) = (&ctx.principal.account_id, &ctx.region);
        let changed: Vec<(String, String, Option<String>, &str)> = match operation {
            "PutParameter" => {
                let kind = if out["Version"] == 1 {
                    "Create"
                } else {
                    "Update"
                };
                self.types_of(ctx, names)
                    .await
                    .into_iter()
                    .map(|(n, t, d)| (n, t, d, kind))
                    .collect()
            }
            "LabelParameterVersion" => self
                .types_of(ctx, names)
                .await
                .into_iter()
                .map(|(n, t, d)| (n, t, d, "LabelParameterVersion"))
                .collect(),
            "DeleteParameter" => before
                .into_iter()
                .map(|(n, t, d)| (n, t, d, "Delete"))
                .collect(),
            "DeleteParameters" => {
                let deleted: Vec<&str> = out["DeletedParameters"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
                    .unwrap_or_default();
                before
                    .into_iter()
                    .filter(|(n, _, _)| deleted.contains(&n.as_str()))
                    .map(|(n, t, d)| (n, t, d, "Delete"))
                    .collect()
            }
            _ => Vec::new(),
        };
        for (name, param_type, description, kind) in changed {
            self.emit(shapes::parameter_store_change(
                account,
                region,
                &name,
                &param_type,
                kind,
                description.as_deref(),
            ))
            .await;
        }
    }
}
