//! What the scenarios need in the server (an IAM user, keys, secrets, parameters), and the
//! request pools of every scenario.

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};

use crate::client::{Protocol, Signer, call_json, call_query};
use crate::drive::each_once;

/// Distinct requests per scenario pool: enough that no cache sees only one request.
pub const POOL: usize = 256;
/// Most parameters the PutParameter scenario spreads its writes over (Standard tier, whose quota
/// is 10,000 per account and Region, the [`POOL`] SecureString fixtures included); never more
/// than the path parameters asked for, so small runs stay small.
const WRITE_NAMES: usize = 4096;

fn write_names(f: &Fixtures) -> usize {
    f.parameters.clamp(1, WRITE_NAMES)
}

/// How many of each thing to create.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// String parameters under `/bench/path/` (GetParametersByPath pages over them).
    pub parameters: usize,
    /// Secrets (GetSecretValue reads the first [`POOL`]).
    pub secrets: usize,
    /// KMS keys in the account besides the ones the scenarios use (the start-up measurement
    /// wants a store that holds many).
    pub keys: usize,
    /// Connections used to create them.
    pub connections: usize,
}

/// Everything created, by name.
#[derive(Debug, Clone, Default)]
pub struct Fixtures {
    pub key_id: String,
    /// Base64 ciphertexts of distinct plaintexts under `key_id`.
    pub ciphertexts: Vec<String>,
    /// ECC_NIST_P256 SIGN_VERIFY key, if the server could create it.
    pub sign_key: Option<String>,
    /// HMAC_256 key, if the server could create it.
    pub mac_key: Option<String>,
    pub secrets: usize,
    /// Path parameters created.
    pub parameters: usize,
    /// Why optional fixtures are missing.
    pub notes: Vec<String>,
}

/// `application/x-www-form-urlencoded` for the Query protocol (RFC 3986 unreserved kept).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn xml_field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&format!("</{tag}>"))?;
    xml.get(start..start + len)
}

/// Creates an IAM user `citadel-bench-<time>` with an inline policy allowing what the scenarios do,
/// and returns a signer with its new access key: the benchmark then exercises real policy
/// evaluation, not the root shortcut.
pub async fn iam_user(addr: &str, root: &Signer) -> anyhow::Result<Signer> {
    // A fresh name per run, so that a server can be measured more than once.
    let user = format!(
        "citadel-bench-{}",
        time::OffsetDateTime::now_utc().unix_timestamp()
    );
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["kms:*", "ssm:*", "secretsmanager:*"], "Resource": "*"}]})
    .to_string();
    call_query(
        addr,
        root,
        "iam",
        &format!("Action=CreateUser&Version=2010-05-08&UserName={user}"),
    )
    .await
    .context("creating the benchmark's IAM user")?;
    call_query(
        addr,
        root,
        "iam",
        &format!(
            "Action=PutUserPolicy&Version=2010-05-08&UserName={user}&PolicyName=bench&PolicyDocument={}",
            form_encode(&policy)
        ),
    )
    .await?;
    let xml = call_query(
        addr,
        root,
        "iam",
        &format!("Action=CreateAccessKey&Version=2010-05-08&UserName={user}"),
    )
    .await?;
    let (Some(id), Some(secret)) = (
        xml_field(&xml, "AccessKeyId"),
        xml_field(&xml, "SecretAccessKey"),
    ) else {
        bail!("CreateAccessKey answered without a key: {xml}");
    };
    Ok(Signer {
        access_key_id: id.to_owned(),
        secret: secret.into(),
        region: root.region.clone(),
    })
}

async fn create_key(addr: &str, s: &Signer, body: Value) -> anyhow::Result<String> {
    let v = call_json(addr, s, "kms", "TrentService.CreateKey", &body).await?;
    v["KeyMetadata"]["KeyId"]
        .as_str()
        .map(str::to_owned)
        .context("CreateKey without KeyId")
}

fn json_requests(
    addr: &str,
    s: &Signer,
    service: &str,
    target: &str,
    bodies: impl Iterator<Item = Value>,
) -> anyhow::Result<Vec<Vec<u8>>> {
    bodies
        .map(|b| {
            s.request(
                addr,
                service,
                Protocol::Json,
                target,
                b.to_string().as_bytes(),
            )
        })
        .collect()
}

/// Creates the fixtures. Optional ones (asymmetric and HMAC keys) that the server refuses are
/// noted, and their scenarios skipped.
pub async fn create(addr: &str, s: &Signer, sizes: Sizes) -> anyhow::Result<Fixtures> {
    let mut f = Fixtures {
        key_id: create_key(addr, s, json!({"Description": "bench"})).await?,
        secrets: sizes.secrets,
        parameters: sizes.parameters,
        ..Fixtures::default()
    };
    for i in 0..POOL {
        let plaintext = B64.encode(format!("benchmark plaintext {i:05} of 32 b"));
        let v = call_json(
            addr,
            s,
            "kms",
            "TrentService.Encrypt",
            &json!({"KeyId": f.key_id, "Plaintext": plaintext}),
        )
        .await?;
        f.ciphertexts.push(
            v["CiphertextBlob"]
                .as_str()
                .context("Encrypt without CiphertextBlob")?
                .to_owned(),
        );
    }
    match create_key(
        addr,
        s,
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .await
    {
        Ok(k) => f.sign_key = Some(k),
        Err(e) => f.notes.push(format!("Sign skipped: {e}")),
    }
    match create_key(
        addr,
        s,
        json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    )
    .await
    {
        Ok(k) => f.mac_key = Some(k),
        Err(e) => f.notes.push(format!("GenerateMac skipped: {e}")),
    }

    // Parameter Store's default quota (40 requests/s) would measure the throttle, not the
    // server: raise it the way AWS users do.
    call_json(
        addr,
        s,
        "ssm",
        "AmazonSSM.UpdateServiceSetting",
        &json!({"SettingId": "/ssm/parameter-store/high-throughput-enabled", "SettingValue": "true"}),
    )
    .await?;
    let secure = (0..POOL).map(|i| {
        json!({"Name": format!("/bench/secure/{i:04}"), "Type": "SecureString",
            "Value": format!("secure value {i}"), "Overwrite": true})
    });
    // Advanced tier: an account holds at most 10,000 Standard parameters (AWS's quota).
    let path = (0..sizes.parameters).map(|i| {
        json!({"Name": format!("/bench/path/{i:07}"), "Type": "String", "Tier": "Advanced",
            "Value": format!("value {i}"), "Overwrite": true})
    });
    // The PutParameter scenario overwrites these: it measures durable writes, not creation.
    let write = (0..write_names(&f)).map(|i| {
        json!({"Name": format!("/bench/write/{i:04}"), "Type": "String",
            "Value": "initial", "Overwrite": true})
    });
    let params = json_requests(
        addr,
        s,
        "ssm",
        "AmazonSSM.PutParameter",
        secure.chain(path).chain(write),
    )?;
    each_once(addr, params, sizes.connections).await?;
    let secrets = (0..sizes.secrets).map(|i| {
        json!({"Name": format!("bench-secret-{i:06}"), "SecretString": format!("secret value {i}"),
            "ClientRequestToken": token(i)})
    });
    let secrets = json_requests(
        addr,
        s,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        secrets,
    )?;
    each_once(addr, secrets, sizes.connections).await?;
    // AWS's quota is 100,000 keys per account and Region, the scenarios' keys included.
    let keys = (0..sizes.keys.min(100_000 - 3))
        .map(|i| json!({"Description": format!("bench filler {i}")}));
    let keys = json_requests(addr, s, "kms", "TrentService.CreateKey", keys)?;
    each_once(addr, keys, sizes.connections).await?;
    Ok(f)
}

/// A `ClientRequestToken` no earlier run used (SDKs fill one in; Secrets Manager needs it).
fn token(i: usize) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    format!("{:032x}", now.unsigned_abs().wrapping_add(i as u128))
}

/// A scenario: a name, and the pool of requests it sends.
pub struct Scenario {
    pub name: &'static str,
    /// Durable writes are reported apart (their target is absolute, not a ratio).
    pub write: bool,
    pub pool: Vec<Vec<u8>>,
}

/// The names of every scenario, in report order.
pub const SCENARIOS: &[&str] = &[
    "kms.Encrypt",
    "kms.Decrypt",
    "kms.GenerateDataKey",
    "kms.Sign (ECDSA P-256)",
    "kms.GenerateMac (HMAC-SHA-256)",
    "secretsmanager.GetSecretValue",
    "ssm.GetParameter (SecureString, decrypted)",
    "ssm.GetParametersByPath (10 of the path's parameters)",
    "ssm.PutParameter (durable write)",
    "secretsmanager.PutSecretValue (durable write)",
];

/// Builds (and signs, now) the pool of scenario `name`; `None` when its fixture is missing.
/// Write scenarios get `writes` distinct requests, so that no write repeats an earlier one
/// (Secrets Manager would answer a repeated `ClientRequestToken` without writing).
pub fn scenario(
    name: &'static str,
    addr: &str,
    s: &Signer,
    f: &Fixtures,
    writes: usize,
) -> anyhow::Result<Option<Scenario>> {
    let n = 0..POOL;
    let kms = |target: &str, bodies: Vec<Value>| {
        json_requests(addr, s, "kms", target, bodies.into_iter())
    };
    let message = |i: usize| B64.encode(format!("message {i:05}"));
    let (write, pool) = match name {
        "kms.Encrypt" => (
            false,
            kms(
                "TrentService.Encrypt",
                n.map(|i| json!({"KeyId": f.key_id, "Plaintext": message(i)}))
                    .collect(),
            )?,
        ),
        "kms.Decrypt" => (
            false,
            kms(
                "TrentService.Decrypt",
                f.ciphertexts
                    .iter()
                    .map(|c| json!({"CiphertextBlob": c}))
                    .collect(),
            )?,
        ),
        "kms.GenerateDataKey" => (
            false,
            kms(
                "TrentService.GenerateDataKey",
                n.map(|i| {
                    json!({"KeyId": f.key_id, "KeySpec": "AES_256",
                        "EncryptionContext": {"n": i.to_string()}})
                })
                .collect(),
            )?,
        ),
        "kms.Sign (ECDSA P-256)" => {
            let Some(k) = &f.sign_key else {
                return Ok(None);
            };
            (
                false,
                kms(
                    "TrentService.Sign",
                    n.map(|i| {
                        json!({"KeyId": k, "Message": message(i), "MessageType": "RAW",
                            "SigningAlgorithm": "ECDSA_SHA_256"})
                    })
                    .collect(),
                )?,
            )
        }
        "kms.GenerateMac (HMAC-SHA-256)" => {
            let Some(k) = &f.mac_key else {
                return Ok(None);
            };
            (
                false,
                kms(
                    "TrentService.GenerateMac",
                    n.map(|i| json!({"KeyId": k, "Message": message(i), "MacAlgorithm": "HMAC_SHA_256"}))
                        .collect(),
                )?,
            )
        }
        "secretsmanager.GetSecretValue" => (
            false,
            json_requests(
                addr,
                s,
                "secretsmanager",
                "secretsmanager.GetSecretValue",
                (0..POOL.min(f.secrets))
                    .map(|i| json!({"SecretId": format!("bench-secret-{i:06}")})),
            )?,
        ),
        "ssm.GetParameter (SecureString, decrypted)" => (
            false,
            json_requests(
                addr,
                s,
                "ssm",
                "AmazonSSM.GetParameter",
                n.map(|i| json!({"Name": format!("/bench/secure/{i:04}"), "WithDecryption": true})),
            )?,
        ),
        "ssm.GetParametersByPath (10 of the path's parameters)" => (
            false,
            json_requests(
                addr,
                s,
                "ssm",
                "AmazonSSM.GetParametersByPath",
                n.map(|_| json!({"Path": "/bench/path", "MaxResults": 10})),
            )?,
        ),
        "ssm.PutParameter (durable write)" => (
            true,
            json_requests(
                addr,
                s,
                "ssm",
                "AmazonSSM.PutParameter",
                // Over many existing names, as the secrets below: writers of one parameter at
                // once get TooManyUpdates (as on AWS), which is not what this measures.
                (0..writes).map(|i| {
                    json!({"Name": format!("/bench/write/{:04}", i % write_names(f)), "Type": "String",
                        "Value": format!("written {i}"), "Overwrite": true})
                }),
            )?,
        ),
        "secretsmanager.PutSecretValue (durable write)" => (
            true,
            json_requests(
                addr,
                s,
                "secretsmanager",
                "secretsmanager.PutSecretValue",
                // Spread over every secret: AWS advises at most one new version per secret
                // every 10 minutes, and keeps a secret's unlabelled versions for a day, so a
                // few hot secrets would measure a version list no real secret has.
                (0..writes).map(|i| {
                    json!({"SecretId": format!("bench-secret-{:06}", i % f.secrets.max(1)),
                        "SecretString": format!("new value {i}"), "ClientRequestToken": token(i)})
                }),
            )?,
        ),
        other => bail!("unknown scenario {other}"),
    };
    Ok(Some(Scenario { name, write, pool }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_and_xml_fields() {
        assert_eq!(form_encode("a b/{\"c\"}"), "a%20b%2F%7B%22c%22%7D");
        let xml = "<R><AccessKeyId>AKIA1</AccessKeyId><SecretAccessKey>s/2</SecretAccessKey></R>";
        assert_eq!(xml_field(xml, "AccessKeyId"), Some("AKIA1"));
        assert_eq!(xml_field(xml, "SecretAccessKey"), Some("s/2"));
        assert_eq!(xml_field(xml, "Nope"), None);
    }
}
