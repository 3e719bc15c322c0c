//! What Citadel's services ask of KMS on a caller's behalf (Parameter Store SecureStrings,
//! Secrets Manager versions). The KMS crate implements [`KeyService`]; other services hold an
//! `Arc<dyn KeyService>` so they depend on the contract, not on KMS's internals.
//!
//! Every call is made with the caller's [`RequestContext`] turned into a forwarded one by
//! [`RequestContext::via`]: KMS authorizes it like a direct call by that principal, with
//! `kms:ViaService` and `aws:CalledVia` added — so a key policy can allow "through SSM only",
//! and a caller without `kms:Decrypt` on a customer key cannot read what SSM stored with it.
//! Naming `alias/aws/<service>` (the calling service's own) creates that AWS-managed key on
//! first use, as AWS does.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::{AwsError, RequestContext};

/// A ciphertext and the ARN of the key that made it.
#[derive(Debug, Clone)]
pub struct Encrypted {
    pub ciphertext: Vec<u8>,
    pub key_arn: String,
}

/// A plaintext (zeroized on drop; its `Debug` does not show it) and the key that opened it.
pub struct Decrypted {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub key_arn: String,
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decrypted")
            .field("plaintext", &"<redacted>")
            .field("key_arn", &self.key_arn)
            .finish()
    }
}

/// A fresh 256-bit data key: in plaintext (zeroized on drop) and encrypted under the key.
pub struct DataKey {
    pub plaintext: Zeroizing<Vec<u8>>,
    pub ciphertext: Vec<u8>,
    pub key_arn: String,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataKey")
            .field("plaintext", &"<redacted>")
            .field("key_arn", &self.key_arn)
            .finish()
    }
}

/// KMS as the other services see it. `ctx` must be a forwarded context
/// (`ctx.via("ssm")`); `key_id` accepts every KeyId form KMS accepts (key id, key ARN, alias
/// name, alias ARN). Errors are KMS's own (`NotFoundException`, `DisabledException`,
/// `AccessDeniedException`, `InvalidCiphertextException`, …): the calling service decides
/// how to present them.
#[async_trait::async_trait]
pub trait KeyService: Send + Sync {
    /// The ARN of the key `key_id` designates, checking that the caller may use it
    /// (`kms:DescribeKey`). Creates the calling service's AWS-managed key when `key_id` is its
    /// `alias/aws/<service>` and it does not exist yet.
    async fn describe_key(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError>;

    /// `kms:Encrypt` of at most 4096 bytes.
    async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Encrypted, AwsError>;

    /// `kms:Decrypt`: the ciphertext names its key; `context` must be the one it was made with.
    async fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<Decrypted, AwsError>;

    /// `kms:GenerateDataKey` with KeySpec AES_256 (envelope encryption of larger values).
    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        context: &BTreeMap<String, String>,
    ) -> Result<DataKey, AwsError>;
}
