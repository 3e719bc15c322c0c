//! The Parameter Store service settings (`/ssm/parameter-store/high-throughput-enabled`,
//! `/ssm/parameter-store/default-parameter-tier`): GetServiceSetting, UpdateServiceSetting,
//! ResetServiceSetting, and the in-memory copy the throughput quota reads on every request.

use std::collections::HashMap;
use std::sync::Mutex;

use citadel_api::{AwsError, RequestContext};
use citadel_model::{Timestamp, ssm};
use citadel_store::Expect;

use crate::authz::Conditions;
use crate::record::{self, SettingValue, Settings};
use crate::{Ssm, errors};

pub const HIGH_THROUGHPUT: &str = "/ssm/parameter-store/high-throughput-enabled";
pub const DEFAULT_TIER: &str = "/ssm/parameter-store/default-parameter-tier";

/// Settings per (account, region), loaded once and dropped when any node changes them.
///
/// A load that overlapped an invalidation is not installed (it may predate the change): every
/// [`SettingsCache::clear`] bumps an epoch, and [`SettingsCache::install`] only stores a value
/// read while the epoch stayed the same.
#[derive(Debug, Default)]
pub struct SettingsCache(Mutex<Epoched>);

/// The invalidation epoch and the settings by (account, region).
type Epoched = (u64, HashMap<(String, String), Settings>);

impl SettingsCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, Epoched> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take before reading from the store; pass to [`SettingsCache::install`] afterwards.
    fn epoch(&self) -> u64 {
        self.lock().0
    }

    fn get(&self, key: &(String, String)) -> Option<Settings> {
        self.lock().1.get(key).cloned()
    }

    fn install(&self, key: (String, String), settings: Settings, epoch: u64) {
        let mut cache = self.lock();
        if cache.0 == epoch {
            cache.1.insert(key, settings);
        }
    }

    pub fn clear(&self) {
        let mut cache = self.lock();
        cache.0 = cache.0.wrapping_add(1);
        cache.1.clear();
    }
}

fn setting_arn(region: &str, account: &str, id: &str) -> String {
    format!("arn:aws:ssm:{region}:{account}:servicesetting{id}")
}

/// The setting a SettingId names (its path, or its ARN in the caller's account and region).
fn resolve(ctx: &RequestContext, id: &str) -> Result<&'static str, AwsError> {
    let prefix = format!(
        "arn:aws:ssm:{}:{}:servicesetting",
        ctx.region, ctx.principal.account_id
    );
    let path = id.strip_prefix(&prefix).unwrap_or(id);
    match path {
        HIGH_THROUGHPUT => Ok(HIGH_THROUGHPUT),
        DEFAULT_TIER => Ok(DEFAULT_TIER),
        _ => Err(errors::setting_not_found(id)),
    }
}

fn default_value(id: &str) -> &'static str {
    if id == HIGH_THROUGHPUT {
        "false"
    } else {
        "Standard"
    }
}

fn render(ctx: &RequestContext, id: &str, set: Option<&SettingValue>) -> ssm::ServiceSetting {
    ssm::ServiceSetting {
        setting_id: Some(id.to_owned()),
        setting_value: Some(set.map_or_else(|| default_value(id).to_owned(), |s| s.value.clone())),
        last_modified_date: set.map(|s| Timestamp::from_epoch_millis(s.modified_ms)),
        last_modified_user: Some(
            set.map_or_else(|| "System".to_owned(), |s| s.modified_user.clone()),
        ),
        arn: Some(setting_arn(&ctx.region, &ctx.principal.account_id, id)),
        status: Some(
            if set.is_some() {
                "Customized"
            } else {
                "Default"
            }
            .to_owned(),
        ),
    }
}

fn slot<'a>(settings: &'a mut Settings, id: &str) -> &'a mut Option<SettingValue> {
    if id == HIGH_THROUGHPUT {
        &mut settings.high_throughput
    } else {
        &mut settings.default_tier
    }
}

impl Ssm {
    /// The settings of (`account`, `region`), from memory when this node has read them.
    pub(crate) async fn settings_of(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Settings, AwsError> {
        let key = (account.to_owned(), region.to_owned());
        if let Some(s) = self.settings.get(&key) {
            return Ok(s);
        }
        let epoch = self.settings.epoch();
        let loaded: Settings = self
            .store
            .get_json(&record::settings_key(account, region))
            .await
            .map_err(errors::store)?
            .unwrap_or_default();
        self.settings.install(key, loaded.clone(), epoch);
        Ok(loaded)
    }

    /// Applies the throughput quota of the caller's account and region.
    pub(crate) async fn throttle(&self, ctx: &RequestContext) -> Result<(), AwsError> {
        let account = &ctx.principal.account_id;
        let settings = self.settings_of(account, &ctx.region).await?;
        let high = settings
            .high_throughput
            .as_ref()
            .is_some_and(|s| s.value == "true");
        let tps = if high {
            self.limits().high_throughput_tps
        } else {
            self.limits().standard_tps
        };
        if self.throttle.allow(account, &ctx.region, tps) {
            Ok(())
        } else {
            Err(errors::throttled())
        }
    }

    async fn authorize_setting(
        &self,
        ctx: &RequestContext,
        action: &str,
        id: &str,
    ) -> Result<(), AwsError> {
        let arn = setting_arn(&ctx.region, &ctx.principal.account_id, id);
        self.authorize(
            ctx,
            action,
            &arn,
            &ctx.principal.account_id.clone(),
            &Conditions::new(),
        )
        .await
    }

    /// Changes one setting (`None` resets it) under compare-and-swap, then updates the copy
    /// in memory.
    async fn write_setting(
        &self,
        ctx: &RequestContext,
        id: &str,
        value: Option<SettingValue>,
    ) -> Result<Settings, AwsError> {
        let account = ctx.principal.account_id.clone();
        let key = record::settings_key(&account, &ctx.region);
        for _ in 0..5 {
            let epoch = self.settings.epoch();
            let current = self
                .store
                .get_json_versioned::<Settings>(&key)
                .await
                .map_err(errors::store)?;
            let (mut settings, expect) = match current {
                Some(v) => (v.value, Expect::Version(v.version)),
                None => (Settings::default(), Expect::Absent),
            };
            *slot(&mut settings, id) = value.clone();
            match self.store.put_json(&key, &settings, expect).await {
                Ok(_) => {
                    self.settings.install(
                        (account.clone(), ctx.region.clone()),
                        settings.clone(),
                        epoch,
                    );
                    return Ok(settings);
                }
                Err(citadel_store::StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(errors::store(e)),
            }
        }
        Err(errors::too_many_updates())
    }

    pub(crate) async fn get_service_setting(
        &self,
        ctx: &RequestContext,
        req: ssm::GetServiceSettingRequest,
    ) -> Result<ssm::GetServiceSettingResult, AwsError> {
        let id = resolve(ctx, req.setting_id.as_deref().unwrap_or_default())?;
        self.authorize_setting(ctx, "ssm:GetServiceSetting", id)
            .await?;
        let mut settings = self
            .settings_of(&ctx.principal.account_id, &ctx.region)
            .await?;
        let set = slot(&mut settings, id).clone();
        Ok(ssm::GetServiceSettingResult {
            service_setting: Some(render(ctx, id, set.as_ref())),
        })
    }

    pub(crate) async fn update_service_setting(
        &self,
        ctx: &RequestContext,
        req: ssm::UpdateServiceSettingRequest,
    ) -> Result<crate::Empty, AwsError> {
        let id = resolve(ctx, req.setting_id.as_deref().unwrap_or_default())?;
        self.authorize_setting(ctx, "ssm:UpdateServiceSetting", id)
            .await?;
        let value = req.setting_value.unwrap_or_default();
        let valid = if id == HIGH_THROUGHPUT {
            value == "true" || value == "false"
        } else {
            ["Standard", "Advanced", "Intelligent-Tiering"].contains(&value.as_str())
        };
        if !valid {
            return Err(errors::validation(format!(
                "The value {value} is not valid for the setting {id}. Valid values: {}.",
                if id == HIGH_THROUGHPUT {
                    "true, false"
                } else {
                    "Standard, Advanced, Intelligent-Tiering"
                }
            )));
        }
        self.write_setting(
            ctx,
            id,
            Some(SettingValue {
                value,
                modified_ms: self.now_ms(),
                modified_user: ctx.principal.arn.clone(),
            }),
        )
        .await?;
        Ok(crate::Empty {})
    }

    pub(crate) async fn reset_service_setting(
        &self,
        ctx: &RequestContext,
        req: ssm::ResetServiceSettingRequest,
    ) -> Result<ssm::ResetServiceSettingResult, AwsError> {
        let id = resolve(ctx, req.setting_id.as_deref().unwrap_or_default())?;
        self.authorize_setting(ctx, "ssm:ResetServiceSetting", id)
            .await?;
        self.write_setting(ctx, id, None).await?;
        Ok(ssm::ResetServiceSettingResult {
            service_setting: Some(render(ctx, id, None)),
        })
    }
}
