//! Rules, targets, PutEvents and TestEventPattern on the default event bus.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use citadel_api::{AwsError, RequestContext};
use citadel_events::{Event, Pattern, entry_size};
use citadel_model::Timestamp;
use citadel_model::events as m;
use citadel_store::{Expect, Versioned};

use crate::bus::{destination_name, input_shape, parse_target_arn};
use crate::errors::{self, invalid_pattern, rule_not_found, validation};
use crate::records::{self, DEFAULT_BUS, Destination, RuleRecord};
use crate::{Empty, Events};

/// AWS's quotas.
pub const MAX_TARGETS_PER_RULE: usize = 5;
pub const MAX_RULES_PER_BUS: usize = 300;

const LIMIT_MESSAGE: &str = "The requested resource exceeds the maximum number allowed.";

/// The default bus is the only one: `None`, `default` or its ARN.
pub(crate) fn check_bus(ctx: &RequestContext, name: Option<&str>) -> Result<(), AwsError> {
    match name {
        None | Some(DEFAULT_BUS) => Ok(()),
        Some(arn) if arn == records::bus_arn(&ctx.region, &ctx.principal.account_id) => Ok(()),
        Some(other) => Err(errors::bus_not_found(other)),
    }
}

pub(crate) fn encode_token(after: &str) -> String {
    TOKEN.encode(after)
}

pub(crate) fn decode_token(token: &str) -> Result<String, AwsError> {
    TOKEN
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| validation("The NextToken provided is not valid."))
}

fn account(ctx: &RequestContext) -> &str {
    &ctx.principal.account_id
}

impl Events {
    async fn load_rule(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Option<Versioned<RuleRecord>>, AwsError> {
        let key = records::rule_key(&ctx.region, account(ctx), name);
        self.bus
            .store
            .get_json_versioned(&key)
            .await
            .map_err(errors::store)
    }

    async fn existing_rule(
        &self,
        ctx: &RequestContext,
        name: &str,
    ) -> Result<Versioned<RuleRecord>, AwsError> {
        self.load_rule(ctx, name)
            .await?
            .ok_or_else(|| rule_not_found(name))
    }

    async fn save_rule(
        &self,
        ctx: &RequestContext,
        rule: &RuleRecord,
        expect: Expect,
    ) -> Result<(), AwsError> {
        let key = records::rule_key(&ctx.region, account(ctx), &rule.name);
        self.bus
            .store
            .put_json(&key, rule, expect)
            .await
            .map_err(errors::store)?;
        self.bus.rule_changed(&key);
        Ok(())
    }

    pub(crate) async fn put_rule(
        &self,
        ctx: &RequestContext,
        req: m::PutRuleRequest,
    ) -> Result<m::PutRuleResponse, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let name = req.name.unwrap_or_default();
        if req.schedule_expression.is_some() {
            return Err(validation(
                "ScheduleExpression is not supported by Citadel yet: rules match events with an EventPattern.",
            ));
        }
        let Some(pattern) = req.event_pattern else {
            return Err(validation(
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            ));
        };
        Pattern::parse(&pattern).map_err(|e| invalid_pattern(&e))?;
        let existing = self.load_rule(ctx, &name).await?;
        if existing.is_none() {
            let prefix = records::rules_prefix(&ctx.region, account(ctx));
            let count = self
                .bus
                .store
                .list(&prefix, None, MAX_RULES_PER_BUS)
                .await
                .map_err(errors::store)?
                .len();
            if count >= MAX_RULES_PER_BUS {
                return Err(errors::limit_exceeded(LIMIT_MESSAGE));
            }
        }
        let tags = req
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key.unwrap_or_default(), t.value.unwrap_or_default()))
            .collect();
        // PutRule replaces the rule (omitted members are not kept); the targets stay.
        let (targets, created_by, expect) = match existing {
            Some(v) => (
                v.value.targets,
                v.value.created_by,
                Expect::Version(v.version),
            ),
            None => (Vec::new(), account(ctx).to_owned(), Expect::Absent),
        };
        let rule = RuleRecord {
            name: name.clone(),
            event_pattern: pattern,
            state: req.state.unwrap_or_else(|| "ENABLED".to_owned()),
            description: req.description,
            role_arn: req.role_arn,
            created_by,
            tags,
            targets,
        };
        self.save_rule(ctx, &rule, expect).await?;
        Ok(m::PutRuleResponse {
            rule_arn: Some(records::rule_arn(&ctx.region, account(ctx), &name)),
        })
    }

    pub(crate) async fn describe_rule(
        &self,
        ctx: &RequestContext,
        req: m::DescribeRuleRequest,
    ) -> Result<m::DescribeRuleResponse, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let name = req.name.unwrap_or_default();
        let rule = self.existing_rule(ctx, &name).await?.value;
        Ok(m::DescribeRuleResponse {
            arn: Some(records::rule_arn(&ctx.region, account(ctx), &rule.name)),
            name: Some(rule.name),
            event_pattern: Some(rule.event_pattern),
            state: Some(rule.state),
            description: rule.description,
            role_arn: rule.role_arn,
            event_bus_name: Some(DEFAULT_BUS.to_owned()),
            created_by: Some(rule.created_by),
            ..Default::default()
        })
    }

    pub(crate) async fn list_rules(
        &self,
        ctx: &RequestContext,
        req: m::ListRulesRequest,
    ) -> Result<m::ListRulesResponse, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let limit = req
            .limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let base = records::rules_prefix(&ctx.region, account(ctx));
        let prefix = format!("{base}{}", req.name_prefix.unwrap_or_default());
        let after = req
            .next_token
            .as_deref()
            .map(decode_token)
            .transpose()?
            .map(|name| format!("{base}{name}"));
        let mut page = self
            .bus
            .store
            .list(&prefix, after.as_deref(), limit + 1)
            .await
            .map_err(errors::store)?;
        let more = page.len() > limit;
        page.truncate(limit);
        let mut rules = Vec::with_capacity(page.len());
        let mut last = None;
        for (_, record) in page {
            let rule: RuleRecord = serde_json::from_slice(&record.value).map_err(|e| {
                tracing::error!(error = %e, "cannot decode a stored rule");
                errors::internal()
            })?;
            last = Some(rule.name.clone());
            rules.push(m::Rule {
                arn: Some(records::rule_arn(&ctx.region, account(ctx), &rule.name)),
                name: Some(rule.name),
                event_pattern: Some(rule.event_pattern),
                state: Some(rule.state),
                description: rule.description,
                role_arn: rule.role_arn,
                event_bus_name: Some(DEFAULT_BUS.to_owned()),
                ..Default::default()
            });
        }
        Ok(m::ListRulesResponse {
            rules: Some(rules),
            next_token: if more {
                last.map(|n| encode_token(&n))
            } else {
                None
            },
        })
    }

    async fn set_state(
        &self,
        ctx: &RequestContext,
        name: &str,
        bus: Option<&str>,
        enable: bool,
    ) -> Result<Empty, AwsError> {
        check_bus(ctx, bus)?;
        let current = self.existing_rule(ctx, name).await?;
        let mut rule = current.value;
        rule.state = match (enable, rule.state.as_str()) {
            (true, crate::bus::STATE_WITH_READ_ONLY) => rule.state.clone(),
            (true, _) => "ENABLED".to_owned(),
            (false, _) => "DISABLED".to_owned(),
        };
        self.save_rule(ctx, &rule, Expect::Version(current.version))
            .await?;
        Ok(Empty {})
    }

    pub(crate) async fn enable_rule(
        &self,
        ctx: &RequestContext,
        req: m::EnableRuleRequest,
    ) -> Result<Empty, AwsError> {
        let name = req.name.unwrap_or_default();
        self.set_state(ctx, &name, req.event_bus_name.as_deref(), true)
            .await
    }

    pub(crate) async fn disable_rule(
        &self,
        ctx: &RequestContext,
        req: m::DisableRuleRequest,
    ) -> Result<Empty, AwsError> {
        let name = req.name.unwrap_or_default();
        self.set_state(ctx, &name, req.event_bus_name.as_deref(), false)
            .await
    }

    pub(crate) async fn delete_rule(
        &self,
        ctx: &RequestContext,
        req: m::DeleteRuleRequest,
    ) -> Result<Empty, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let name = req.name.unwrap_or_default();
        // Deleting a rule that does not exist succeeds, as in EventBridge.
        let Some(current) = self.load_rule(ctx, &name).await? else {
            return Ok(Empty {});
        };
        if !current.value.targets.is_empty() {
            return Err(validation("Rule can't be deleted since it has targets."));
        }
        let key = records::rule_key(&ctx.region, account(ctx), &name);
        self.bus
            .store
            .delete(&key, Expect::Version(current.version))
            .await
            .map_err(errors::store)?;
        self.bus.rule_changed(&key);
        Ok(Empty {})
    }

    /// Checks one target: where it delivers, its input shape, and the options Citadel cannot
    /// honour (refused rather than ignored).
    async fn check_target(&self, ctx: &RequestContext, t: &m::Target) -> Result<(), AwsError> {
        let id = t.id.as_deref().unwrap_or_default();
        let arn = t.arn.as_deref().unwrap_or_default();
        let destination = parse_target_arn(arn).map_err(validation)?;
        match destination {
            Destination::File { .. } => {
                if self.bus.config.file_target_dir.is_none() {
                    return Err(validation(format!(
                        "Target {id}: file targets are disabled because the server has no events file-target directory configured."
                    )));
                }
            }
            Destination::ApiDestination { arn } => {
                let parts: Vec<&str> = arn.splitn(6, ':').collect();
                let same_scope = parts.get(3) == Some(&ctx.region.as_str())
                    && parts.get(4) == Some(&account(ctx));
                let name = destination_name(&arn).unwrap_or_default();
                let key = records::destination_key(&ctx.region, account(ctx), name);
                let found: Option<records::ApiDestinationRecord> = if same_scope {
                    self.bus.store.get_json(&key).await.map_err(errors::store)?
                } else {
                    None
                };
                if found.as_ref().is_none_or(|d| d.arn != arn) {
                    return Err(errors::not_found(format!(
                        "Target {id}: API destination {arn} does not exist."
                    )));
                }
            }
        }
        input_shape(t).map_err(|e| validation(format!("Target {id}: {e}")))?;
        if t.dead_letter_config.is_some() {
            return Err(validation(format!(
                "Target {id}: DeadLetterConfig is not supported by Citadel; events whose retries run out are kept in Citadel's dead-letter store (citadel events redrive)."
            )));
        }
        let unsupported = [
            ("KinesisParameters", t.kinesis_parameters.is_some()),
            ("RunCommandParameters", t.run_command_parameters.is_some()),
            ("EcsParameters", t.ecs_parameters.is_some()),
            ("BatchParameters", t.batch_parameters.is_some()),
            ("SqsParameters", t.sqs_parameters.is_some()),
            (
                "RedshiftDataParameters",
                t.redshift_data_parameters.is_some(),
            ),
            (
                "SageMakerPipelineParameters",
                t.sage_maker_pipeline_parameters.is_some(),
            ),
            ("AppSyncParameters", t.app_sync_parameters.is_some()),
        ];
        if let Some((member, _)) = unsupported.iter().find(|(_, set)| *set) {
            return Err(validation(format!(
                "Target {id}: {member} does not apply to the target types Citadel delivers to."
            )));
        }
        Ok(())
    }

    pub(crate) async fn put_targets(
        &self,
        ctx: &RequestContext,
        req: m::PutTargetsRequest,
    ) -> Result<m::PutTargetsResponse, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let name = req.rule.unwrap_or_default();
        let targets = req.targets.unwrap_or_default();
        for t in &targets {
            self.check_target(ctx, t).await?;
        }
        let current = self.existing_rule(ctx, &name).await?;
        let mut rule = current.value;
        for t in targets {
            match rule.targets.iter_mut().find(|e| e.id == t.id) {
                Some(existing) => *existing = t,
                None => rule.targets.push(t),
            }
        }
        if rule.targets.len() > MAX_TARGETS_PER_RULE {
            return Err(errors::limit_exceeded(LIMIT_MESSAGE));
        }
        self.save_rule(ctx, &rule, Expect::Version(current.version))
            .await?;
        Ok(m::PutTargetsResponse {
            failed_entry_count: Some(0),
            failed_entries: Some(Vec::new()),
        })
    }

    pub(crate) async fn remove_targets(
        &self,
        ctx: &RequestContext,
        req: m::RemoveTargetsRequest,
    ) -> Result<m::RemoveTargetsResponse, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let name = req.rule.unwrap_or_default();
        let ids = req.ids.unwrap_or_default();
        let current = self.existing_rule(ctx, &name).await?;
        let mut rule = current.value;
        rule.targets
            .retain(|t| !ids.iter().any(|id| t.id.as_deref() == Some(id.as_str())));
        self.save_rule(ctx, &rule, Expect::Version(current.version))
            .await?;
        Ok(m::RemoveTargetsResponse {
            failed_entry_count: Some(0),
            failed_entries: Some(Vec::new()),
        })
    }

    pub(crate) async fn list_targets_by_rule(
        &self,
        ctx: &RequestContext,
        req: m::ListTargetsByRuleRequest,
    ) -> Result<m::ListTargetsByRuleResponse, AwsError> {
        check_bus(ctx, req.event_bus_name.as_deref())?;
        let name = req.rule.unwrap_or_default();
        let rule = self.existing_rule(ctx, &name).await?.value;
        let limit = req
            .limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(100)
            .clamp(1, 100);
        let start = match req.next_token.as_deref() {
            None => 0,
            Some(t) => decode_token(t)?
                .parse::<usize>()
                .map_err(|_| validation("The NextToken provided is not valid."))?,
        };
        let end = (start + limit).min(rule.targets.len());
        let targets = rule.targets.get(start..end).unwrap_or_default().to_vec();
        Ok(m::ListTargetsByRuleResponse {
            targets: Some(targets),
            next_token: (end < rule.targets.len()).then(|| encode_token(&end.to_string())),
        })
    }

    pub(crate) async fn put_events(
        &self,
        ctx: &RequestContext,
        req: m::PutEventsRequest,
    ) -> Result<m::PutEventsResponse, AwsError> {
        let entries = req.entries.unwrap_or_default();
        let total: usize = entries
            .iter()
            .map(|e| {
                entry_size(
                    e.time.is_some(),
                    e.source.as_deref(),
                    e.detail_type.as_deref(),
                    e.detail.as_deref(),
                    e.resources.as_deref().unwrap_or_default(),
                )
            })
            .sum();
        if total > citadel_events::MAX_ENTRY_BYTES {
            return Err(validation(
                "Total size of the entries in the request is over the limit.",
            ));
        }
        let mut results = Vec::with_capacity(entries.len());
        let mut failed = 0;
        for entry in entries {
            let result = match self.accept_entry(ctx, entry).await {
                Ok(event_id) => m::PutEventsResultEntry {
                    event_id: Some(event_id),
                    ..Default::default()
                },
                Err(EntryError::Request(e)) => return Err(e),
                Err(EntryError::Entry(code, message)) => {
                    failed += 1;
                    m::PutEventsResultEntry {
                        error_code: Some(code.to_owned()),
                        error_message: Some(message),
                        ..Default::default()
                    }
                }
            };
            results.push(result);
        }
        Ok(m::PutEventsResponse {
            failed_entry_count: Some(failed),
            entries: Some(results),
        })
    }

    async fn accept_entry(
        &self,
        ctx: &RequestContext,
        entry: m::PutEventsRequestEntry,
    ) -> Result<String, EntryError> {
        if let Some(bus) = entry.event_bus_name.as_deref()
            && check_bus(ctx, Some(bus)).is_err()
        {
            return Err(EntryError::Entry(
                "ResourceNotFoundException",
                format!("Event bus {bus} does not exist."),
            ));
        }
        let required = |v: &Option<String>, member: &str| -> Result<String, EntryError> {
            match v.as_deref() {
                Some(s) if !s.is_empty() => Ok(s.to_owned()),
                _ => Err(EntryError::Entry(
                    "InvalidArgument",
                    format!(
                        "Parameter {member} is not valid. Reason: {member} is a required argument."
                    ),
                )),
            }
        };
        let source = required(&entry.source, "Source")?;
        let detail_type = required(&entry.detail_type, "DetailType")?;
        let detail_text = required(&entry.detail, "Detail")?;
        let detail: serde_json::Value = match serde_json::from_str(&detail_text) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            _ => {
                return Err(EntryError::Entry(
                    "MalformedDetail",
                    "Detail is malformed.".to_owned(),
                ));
            }
        };
        if source.starts_with("aws.") {
            return Err(EntryError::Entry(
                "NotAuthorizedForSourceException",
                "Not authorized for the source.".to_owned(),
            ));
        }
        let time = entry.time.and_then(|t: Timestamp| {
            time::OffsetDateTime::from_unix_timestamp(t.epoch_seconds()).ok()
        });
        let event = Event::new(
            source,
            detail_type,
            detail,
            account(ctx),
            ctx.region.clone(),
            entry.resources.unwrap_or_default(),
            time,
        )
        .map_err(|e| {
            tracing::error!(error = %e, "cannot build an event");
            EntryError::Entry("InternalFailure", "An internal error occurred.".to_owned())
        })?;
        match self.bus.publish(&event).await {
            Ok(_) => Ok(event.id),
            Err(crate::errors::BusError::Store(e)) => match e {
                citadel_store::StoreError::Sealed | citadel_store::StoreError::NotInitialized => {
                    Err(EntryError::Request(AwsError::sealed()))
                }
                other => {
                    tracing::error!(error = %other, "storing an accepted event failed");
                    Err(EntryError::Entry(
                        "InternalFailure",
                        "An internal error occurred. Retry the entry.".to_owned(),
                    ))
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "publishing an event failed");
                Err(EntryError::Entry(
                    "InternalFailure",
                    "An internal error occurred. Retry the entry.".to_owned(),
                ))
            }
        }
    }

    pub(crate) async fn test_event_pattern(
        &self,
        _ctx: &RequestContext,
        req: m::TestEventPatternRequest,
    ) -> Result<m::TestEventPatternResponse, AwsError> {
        let pattern = Pattern::parse(req.event_pattern.as_deref().unwrap_or_default())
            .map_err(|e| invalid_pattern(&e))?;
        let event: serde_json::Value =
            match serde_json::from_str(req.event.as_deref().unwrap_or_default()) {
                Ok(v @ serde_json::Value::Object(_)) => v,
                _ => return Err(validation("Parameter Event is not valid.")),
            };
        let missing: Vec<&str> = [
            "id",
            "account",
            "source",
            "time",
            "region",
            "resources",
            "detail-type",
        ]
        .into_iter()
        .filter(|f| event.get(*f).is_none_or(serde_json::Value::is_null))
        .collect();
        if !missing.is_empty() {
            return Err(validation(format!(
                "Parameter Event is not valid. Reason: {} must be specified.",
                missing.join(", ")
            )));
        }
        Ok(m::TestEventPatternResponse {
            result: Some(pattern.matches(&event)),
        })
    }
}

enum EntryError {
    /// The whole request fails (the store is sealed).
    Request(AwsError),
    /// This entry fails: (ErrorCode, ErrorMessage).
    Entry(&'static str, String),
}
