//! Key states and the one table that says, for every operation, in which states it may run and
//! which error it gets otherwise (AWS's "Key states of AWS KMS keys" page).
//!
//! Every handler checks the state through [`check`]; nothing else decides it.

use citadel_api::AwsError;
use serde::{Deserialize, Serialize};

use crate::errors;

/// The `KeyState` of a KMS key, as AWS names it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyState {
    Creating,
    Enabled,
    Disabled,
    PendingDeletion,
    PendingImport,
    PendingReplicaDeletion,
    Unavailable,
    Updating,
}

impl KeyState {
    pub const ALL: [KeyState; 8] = [
        KeyState::Creating,
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
        KeyState::PendingImport,
        KeyState::PendingReplicaDeletion,
        KeyState::Unavailable,
        KeyState::Updating,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Creating => "Creating",
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
            KeyState::PendingReplicaDeletion => "PendingReplicaDeletion",
            KeyState::Unavailable => "Unavailable",
            KeyState::Updating => "Updating",
        }
    }

    /// How AWS finishes the sentence `<key-arn> is …` in `KMSInvalidStateException`.
    fn phrase(self) -> &'static str {
        match self {
            KeyState::Creating => "creating",
            KeyState::Enabled => "enabled",
            KeyState::Disabled => "disabled",
            KeyState::PendingDeletion => "pending deletion",
            KeyState::PendingImport => "pending import",
            KeyState::PendingReplicaDeletion => "pending replica deletion",
            KeyState::Unavailable => "unavailable",
            KeyState::Updating => "updating",
        }
    }

    fn index(self) -> usize {
        match self {
            KeyState::Creating => 0,
            KeyState::Enabled => 1,
            KeyState::Disabled => 2,
            KeyState::PendingDeletion => 3,
            KeyState::PendingImport => 4,
            KeyState::PendingReplicaDeletion => 5,
            KeyState::Unavailable => 6,
            KeyState::Updating => 7,
        }
    }
}

/// Operations whose outcome depends on the key state. ReEncrypt appears twice because its
/// source and destination keys are checked separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOp {
    CancelKeyDeletion,
    CreateAlias,
    CreateGrant,
    Decrypt,
    DeleteAlias,
    DeleteImportedKeyMaterial,
    DeriveSharedSecret,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    EnableKey,
    EnableKeyRotation,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyWithoutPlaintext,
    GenerateMac,
    GetKeyPolicy,
    GetKeyRotationStatus,
    GetParametersForImport,
    GetPublicKey,
    ImportKeyMaterial,
    ListAliases,
    ListKeyPolicies,
    ListGrants,
    ListKeyRotations,
    ListResourceTags,
    PutKeyPolicy,
    ReEncryptFrom,
    ReEncryptTo,
    ReplicateKey,
    RetireGrant,
    RevokeGrant,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    Sign,
    TagResource,
    UntagResource,
    UpdateAlias,
    UpdateKeyDescription,
    UpdatePrimaryRegion,
    Verify,
    VerifyMac,
}

/// What happens to an operation in one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The operation proceeds.
    Ok,
    /// `DisabledException: <arn> is disabled.`
    Disabled,
    /// `KMSInvalidStateException: <arn> is <state>.`
    Invalid,
    /// `KMSInvalidStateException: <arn> is not pending deletion.` (CancelKeyDeletion only)
    NotPendingDeletion,
}

use Outcome::{Disabled as D, Invalid as I, NotPendingDeletion as N, Ok as O};

/// Columns: Creating, Enabled, Disabled, PendingDeletion, PendingImport,
/// PendingReplicaDeletion, Unavailable, Updating.
///
/// Cryptographic operations need an enabled key; key management works on enabled and disabled
/// keys but not on keys waiting to be deleted; reading metadata, policies and tags (and deleting
/// an alias) works in every state. Rotation settings follow the cryptographic rule because AWS
/// answers `DisabledException` there too.
const TABLE: &[(KeyOp, [Outcome; 8])] = &[
    (KeyOp::CancelKeyDeletion, [N, N, N, O, N, O, N, N]),
    (KeyOp::CreateAlias, [I, O, O, I, O, I, O, I]),
    (KeyOp::CreateGrant, [I, O, O, I, O, I, O, I]),
    (KeyOp::Decrypt, [I, O, D, I, I, I, I, I]),
    (KeyOp::DeleteAlias, [O, O, O, O, O, O, O, O]),
    // AWS deletes imported material of a key pending deletion too (its state stays).
    (KeyOp::DeleteImportedKeyMaterial, [I, O, O, O, O, I, I, I]),
    (KeyOp::DeriveSharedSecret, [I, O, D, I, I, I, I, I]),
    (KeyOp::DescribeKey, [O, O, O, O, O, O, O, O]),
    (KeyOp::DisableKey, [I, O, O, I, I, I, O, I]),
    (KeyOp::DisableKeyRotation, [I, O, D, I, I, I, I, I]),
    (KeyOp::EnableKey, [I, O, O, I, I, I, O, I]),
    (KeyOp::EnableKeyRotation, [I, O, D, I, I, I, I, I]),
    (KeyOp::Encrypt, [I, O, D, I, I, I, I, I]),
    (KeyOp::GenerateDataKey, [I, O, D, I, I, I, I, I]),
    (KeyOp::GenerateDataKeyPair, [I, O, D, I, I, I, I, I]),
    (
        KeyOp::GenerateDataKeyPairWithoutPlaintext,
        [I, O, D, I, I, I, I, I],
    ),
    (
        KeyOp::GenerateDataKeyWithoutPlaintext,
        [I, O, D, I, I, I, I, I],
    ),
    (KeyOp::GenerateMac, [I, O, D, I, I, I, I, I]),
    (KeyOp::GetKeyPolicy, [O, O, O, O, O, O, O, O]),
    (KeyOp::GetKeyRotationStatus, [O, O, O, O, O, O, O, O]),
    (KeyOp::GetParametersForImport, [I, O, O, I, O, I, I, I]),
    (KeyOp::GetPublicKey, [I, O, D, I, I, I, I, I]),
    (KeyOp::ImportKeyMaterial, [I, O, O, I, O, I, I, I]),
    (KeyOp::ListAliases, [O, O, O, O, O, O, O, O]),
    (KeyOp::ListKeyPolicies, [O, O, O, O, O, O, O, O]),
    (KeyOp::ListGrants, [O, O, O, O, O, O, O, O]),
    (KeyOp::ListKeyRotations, [O, O, O, O, O, O, O, O]),
    (KeyOp::ListResourceTags, [O, O, O, O, O, O, O, O]),
    (KeyOp::PutKeyPolicy, [O, O, O, O, O, O, O, O]),
    (KeyOp::ReEncryptFrom, [I, O, D, I, I, I, I, I]),
    (KeyOp::ReEncryptTo, [I, O, D, I, I, I, I, I]),
    (KeyOp::ReplicateKey, [I, O, O, I, O, I, I, I]),
    (KeyOp::RetireGrant, [O, O, O, O, O, O, O, O]),
    (KeyOp::RevokeGrant, [O, O, O, O, O, O, O, O]),
    (KeyOp::RotateKeyOnDemand, [I, O, D, I, I, I, I, I]),
    (KeyOp::ScheduleKeyDeletion, [I, O, O, I, O, I, O, I]),
    (KeyOp::Sign, [I, O, D, I, I, I, I, I]),
    (KeyOp::TagResource, [I, O, O, I, O, I, O, I]),
    (KeyOp::UntagResource, [I, O, O, I, O, I, O, I]),
    (KeyOp::UpdateAlias, [I, O, O, I, O, I, O, I]),
    (KeyOp::UpdateKeyDescription, [I, O, O, I, O, I, O, I]),
    (KeyOp::UpdatePrimaryRegion, [I, O, O, I, O, I, I, I]),
    (KeyOp::Verify, [I, O, D, I, I, I, I, I]),
    (KeyOp::VerifyMac, [I, O, D, I, I, I, I, I]),
];

/// The outcome of `op` on a key in `state`.
pub fn outcome(state: KeyState, op: KeyOp) -> Outcome {
    TABLE
        .iter()
        .find(|(o, _)| *o == op)
        .and_then(|(_, row)| row.get(state.index()).copied())
        // Every KeyOp has a row (a unit test checks it); refusing is the safe default anyway.
        .unwrap_or(Outcome::Invalid)
}

/// `Ok(())` when `op` may run on the key `arn` in `state`, else AWS's error for that cell.
pub fn check(state: KeyState, op: KeyOp, arn: &str) -> Result<(), AwsError> {
    match outcome(state, op) {
        Outcome::Ok => Ok(()),
        Outcome::Disabled => Err(errors::disabled(arn)),
        Outcome::Invalid => Err(errors::invalid_state(format!(
            "{arn} is {}.",
            state.phrase()
        ))),
        Outcome::NotPendingDeletion => Err(errors::invalid_state(format!(
            "{arn} is not pending deletion."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    const ALL_OPS: [KeyOp; 44] = [
        KeyOp::DeleteImportedKeyMaterial,
        KeyOp::DeriveSharedSecret,
        KeyOp::GenerateDataKeyPair,
        KeyOp::GenerateDataKeyPairWithoutPlaintext,
        KeyOp::GenerateMac,
        KeyOp::GetParametersForImport,
        KeyOp::GetPublicKey,
        KeyOp::ImportKeyMaterial,
        KeyOp::ReplicateKey,
        KeyOp::Sign,
        KeyOp::UpdatePrimaryRegion,
        KeyOp::Verify,
        KeyOp::VerifyMac,
        KeyOp::CancelKeyDeletion,
        KeyOp::CreateAlias,
        KeyOp::Decrypt,
        KeyOp::DeleteAlias,
        KeyOp::DescribeKey,
        KeyOp::DisableKey,
        KeyOp::DisableKeyRotation,
        KeyOp::EnableKey,
        KeyOp::EnableKeyRotation,
        KeyOp::Encrypt,
        KeyOp::GenerateDataKey,
        KeyOp::GenerateDataKeyWithoutPlaintext,
        KeyOp::GetKeyPolicy,
        KeyOp::GetKeyRotationStatus,
        KeyOp::ListAliases,
        KeyOp::ListKeyPolicies,
        KeyOp::ListKeyRotations,
        KeyOp::ListResourceTags,
        KeyOp::PutKeyPolicy,
        KeyOp::ReEncryptFrom,
        KeyOp::ReEncryptTo,
        KeyOp::RotateKeyOnDemand,
        KeyOp::ScheduleKeyDeletion,
        KeyOp::TagResource,
        KeyOp::UntagResource,
        KeyOp::UpdateAlias,
        KeyOp::UpdateKeyDescription,
        KeyOp::CreateGrant,
        KeyOp::ListGrants,
        KeyOp::RetireGrant,
        KeyOp::RevokeGrant,
    ];

    #[test]
    fn every_operation_has_exactly_one_row() {
        for op in ALL_OPS {
            assert_eq!(TABLE.iter().filter(|(o, _)| *o == op).count(), 1, "{op:?}");
        }
        assert_eq!(TABLE.len(), ALL_OPS.len());
    }

    #[test]
    fn crypto_on_disabled_and_pending_deletion_keys_gets_aws_errors() {
        for op in [
            KeyOp::Encrypt,
            KeyOp::Decrypt,
            KeyOp::GenerateDataKey,
            KeyOp::GenerateDataKeyWithoutPlaintext,
            KeyOp::ReEncryptFrom,
            KeyOp::ReEncryptTo,
            KeyOp::Sign,
            KeyOp::Verify,
            KeyOp::GetPublicKey,
            KeyOp::GenerateMac,
            KeyOp::VerifyMac,
            KeyOp::DeriveSharedSecret,
            KeyOp::GenerateDataKeyPair,
        ] {
            assert!(check(KeyState::Enabled, op, ARN).is_ok());
            let e = check(KeyState::Disabled, op, ARN).unwrap_err();
            assert_eq!(e.code, "DisabledException");
            assert_eq!(e.message.unwrap(), format!("{ARN} is disabled."));
            let e = check(KeyState::PendingDeletion, op, ARN).unwrap_err();
            assert_eq!(e.code, "KMSInvalidStateException");
            assert_eq!(e.message.unwrap(), format!("{ARN} is pending deletion."));
            let e = check(KeyState::PendingImport, op, ARN).unwrap_err();
            assert_eq!(e.message.unwrap(), format!("{ARN} is pending import."));
        }
    }

    #[test]
    fn reads_work_in_every_state() {
        for op in [
            KeyOp::DescribeKey,
            KeyOp::GetKeyPolicy,
            KeyOp::PutKeyPolicy,
            KeyOp::ListResourceTags,
            KeyOp::DeleteAlias,
            KeyOp::GetKeyRotationStatus,
        ] {
            for s in KeyState::ALL {
                assert!(check(s, op, ARN).is_ok(), "{op:?} in {s:?}");
            }
        }
    }

    #[test]
    fn management_fails_only_while_pending_deletion() {
        for op in [
            KeyOp::EnableKey,
            KeyOp::DisableKey,
            KeyOp::TagResource,
            KeyOp::UntagResource,
            KeyOp::UpdateKeyDescription,
            KeyOp::CreateAlias,
            KeyOp::UpdateAlias,
            KeyOp::ScheduleKeyDeletion,
        ] {
            assert!(check(KeyState::Enabled, op, ARN).is_ok(), "{op:?}");
            assert!(check(KeyState::Disabled, op, ARN).is_ok(), "{op:?}");
            let e = check(KeyState::PendingDeletion, op, ARN).unwrap_err();
            assert_eq!(e.code, "KMSInvalidStateException", "{op:?}");
            assert_eq!(e.message.unwrap(), format!("{ARN} is pending deletion."));
        }
    }

    #[test]
    fn cancel_deletion_needs_a_pending_key() {
        assert!(check(KeyState::PendingDeletion, KeyOp::CancelKeyDeletion, ARN).is_ok());
        for s in [KeyState::Enabled, KeyState::Disabled] {
            let e = check(s, KeyOp::CancelKeyDeletion, ARN).unwrap_err();
            assert_eq!(e.code, "KMSInvalidStateException");
            assert_eq!(
                e.message.unwrap(),
                format!("{ARN} is not pending deletion.")
            );
        }
    }

    #[test]
    fn rotation_settings_need_an_enabled_key() {
        for op in [
            KeyOp::EnableKeyRotation,
            KeyOp::DisableKeyRotation,
            KeyOp::RotateKeyOnDemand,
        ] {
            assert!(check(KeyState::Enabled, op, ARN).is_ok());
            assert_eq!(
                check(KeyState::Disabled, op, ARN).unwrap_err().code,
                "DisabledException"
            );
            assert_eq!(
                check(KeyState::PendingDeletion, op, ARN).unwrap_err().code,
                "KMSInvalidStateException"
            );
        }
    }

    #[test]
    fn state_names_round_trip_through_serde() {
        for s in KeyState::ALL {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.as_str()));
            assert_eq!(serde_json::from_str::<KeyState>(&j).unwrap(), s);
        }
    }
}
