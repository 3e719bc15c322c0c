//! The scheduled work: purging secrets whose recovery window ended, starting scheduled
//! rotations and resuming rotations a restart interrupted. Driven by the time-ordered index
//! (see [`crate::record`]); every piece of work commits by compare-and-swap on the secret
//! record together with its index entry, so it happens exactly once.

use std::sync::Arc;

use citadel_store::Expect;
use time::OffsetDateTime;

use crate::errors::SecretsError;
use crate::record::{DUE_PREFIX, DueEntry, DueKind, RotationFailure, secret_path};
use crate::repo::{Change, Loaded, value_deletes};
use crate::rotation::{begin, max_resumes, unfinished_pending};
use crate::{Inner, clock};

/// What one run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DueReport {
    pub purged: usize,
    pub rotations_started: usize,
    pub rotations_resumed: usize,
}

const PAGE: usize = 256;

pub(crate) async fn run_due(
    inner: &Arc<Inner>,
    now: OffsetDateTime,
) -> Result<DueReport, SecretsError> {
    let now_ms = clock::to_millis(now);
    let mut report = DueReport::default();
    let mut after: Option<String> = None;
    'pages: loop {
        let page = inner.store.list(DUE_PREFIX, after.as_deref(), PAGE).await?;
        let last = page.len() < PAGE;
        for (key, _) in &page {
            after = Some(key.clone());
            let Some(entry) = DueEntry::parse(key) else {
                tracing::warn!(%key, "malformed Secrets Manager schedule entry; removing it");
                inner.store.delete(key, Expect::Any).await?;
                continue;
            };
            if entry.at_ms > now_ms {
                break 'pages;
            }
            let path = secret_path(&entry.account, &entry.region, &entry.name);
            let loaded = inner.load(&path).await?;
            let live = loaded
                .as_ref()
                .is_some_and(|l| l.record.due_entries().contains(&entry));
            let Some(loaded) = loaded.filter(|_| live) else {
                // The secret changed since the entry was written (its batch replaced it) or
                // is gone: nothing is due.
                inner.store.delete(key, Expect::Any).await?;
                continue;
            };
            match entry.kind {
                DueKind::Purge => {
                    if purge(inner, loaded).await? {
                        report.purged += 1;
                    }
                }
                DueKind::Rotation => match rotation(inner, loaded, now_ms).await? {
                    Some(true) => report.rotations_resumed += 1,
                    Some(false) => report.rotations_started += 1,
                    None => {}
                },
            }
        }
        if last {
            break;
        }
    }
    Ok(report)
}

/// Deletes a secret whose recovery window ended, with its values and index entries.
async fn purge(inner: &Arc<Inner>, loaded: Loaded) -> Result<bool, SecretsError> {
    let arn = loaded.record.arn();
    let path = loaded.record.path();
    let extra = value_deletes(&loaded.record);
    match inner.commit(&path, Some(&loaded), None, extra).await {
        Ok(()) => {
            tracing::info!(secret = %arn, event = "EndSecretVersionDelete", "secret purged at the end of its recovery window");
            Ok(true)
        }
        // Restored or changed meanwhile: the next run sees its new schedule.
        Err(citadel_store::StoreError::Conflict { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Starts a scheduled rotation or resumes an interrupted one. `Some(true)` = resumed,
/// `Some(false)` = started, `None` = nothing to do.
async fn rotation(
    inner: &Arc<Inner>,
    loaded: Loaded,
    now_ms: i64,
) -> Result<Option<bool>, SecretsError> {
    let path = loaded.record.path();
    if let Some(p) = loaded.record.rotation.in_progress.clone() {
        if inner.is_running(&path) {
            return Ok(None);
        }
        // Interrupted by a restart: resume at the persisted step, a bounded number of times.
        let token = p.token.clone();
        let give_up = p.resumes >= max_resumes();
        let result = inner
            .update(loaded, |cur| {
                let mut rec = cur.clone();
                match rec.rotation.in_progress.as_mut() {
                    Some(q) if q.token == token => {
                        if give_up {
                            let step = crate::record::STEPS
                                .get(q.next_step)
                                .copied()
                                .unwrap_or("finishSecret")
                                .to_owned();
                            rec.rotation.in_progress = None;
                            rec.rotation.last_failure = Some(RotationFailure {
                                at_ms: now_ms,
                                token: token.clone(),
                                step,
                                message: "the rotation was interrupted too many times".to_owned(),
                            });
                        } else {
                            q.resumes += 1;
                        }
                        Ok(Change::put(rec, true))
                    }
                    _ => Ok(Change::put(rec, false)),
                }
            })
            .await;
        return match result {
            Ok(true) if !give_up => {
                tracing::info!(secret = %path, version = %token, "resuming an interrupted rotation");
                inner.spawn_rotation(path, token);
                Ok(Some(true))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(SecretsError::Aws(e)),
        };
    }
    // A scheduled rotation.
    let Some(lambda) = loaded.record.rotation.lambda_arn.clone() else {
        return Ok(None);
    };
    let result = inner
        .update(loaded, |cur| {
            let mut rec = cur.clone();
            if rec.is_deleted() || !rec.rotation.enabled || rec.rotation.in_progress.is_some() {
                return Ok(Change::put(rec, None));
            }
            match rec.rotation.next_ms {
                Some(at) if at <= now_ms => {}
                _ => return Ok(Change::put(rec, None)),
            }
            let token =
                unfinished_pending(&rec).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            begin(&mut rec, &token, &lambda, false, now_ms);
            Ok(Change::put(rec, Some(token)))
        })
        .await
        .map_err(SecretsError::Aws)?;
    match result {
        Some(token) => {
            tracing::info!(secret = %path, version = %token, event = "RotationStarted", "scheduled secret rotation started");
            inner.spawn_rotation(path, token);
            Ok(Some(false))
        }
        None => Ok(None),
    }
}
