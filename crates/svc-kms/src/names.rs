//! Parsing of what callers put in `KeyId` (key id, key ARN, alias name, alias ARN), and the
//! rules for alias names and tags, with AWS's errors.

use std::collections::{BTreeMap, BTreeSet};

use citadel_api::AwsError;
use citadel_model::kms::Tag;

use crate::errors;

/// Most tags one key may carry.
pub const MAX_TAGS: usize = 50;
/// Most aliases one key may have.
pub const MAX_ALIASES_PER_KEY: usize = 50;

/// What a `KeyId` names, with the account and region it lives in already decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Key {
        account: String,
        region: String,
        id: String,
    },
    Alias {
        account: String,
        region: String,
        /// `alias/…`
        name: String,
    },
}

/// A key id: a UUID in its canonical text form, or a multi-Region key id (`mrk-` and 32
/// lowercase hex digits).
pub fn is_key_id(s: &str) -> bool {
    PackedKeyId::parse(s).is_some()
}

/// A key id in the 17 bytes that ciphertext headers and grant tokens carry: its kind and 16
/// bytes (a UUID's bytes, or the 32 hex digits of a multi-Region id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedKeyId {
    pub kind: u8,
    pub bytes: [u8; 16],
}

impl PackedKeyId {
    pub const UUID: u8 = 1;
    pub const MULTI_REGION: u8 = 2;

    /// Reads a key id in text form; `None` for anything else.
    pub fn parse(id: &str) -> Option<Self> {
        if let Some(hex_id) = id.strip_prefix("mrk-") {
            if hex_id.len() != 32
                || !hex_id
                    .bytes()
                    .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            {
                return None;
            }
            let bytes = hex::decode(hex_id).ok()?.try_into().ok()?;
            return Some(PackedKeyId {
                kind: Self::MULTI_REGION,
                bytes,
            });
        }
        let b = id.as_bytes();
        let canonical = b.len() == 36
            && b.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        if !canonical {
            return None;
        }
        Some(PackedKeyId {
            kind: Self::UUID,
            bytes: uuid::Uuid::parse_str(id).ok()?.into_bytes(),
        })
    }

    /// From a kind byte and 16 bytes read from a blob; `None` for an unknown kind.
    pub fn from_parts(kind: u8, bytes: &[u8]) -> Option<Self> {
        if kind != Self::UUID && kind != Self::MULTI_REGION {
            return None;
        }
        Some(PackedKeyId {
            kind,
            bytes: bytes.try_into().ok()?,
        })
    }

    /// The key id as AWS writes it (lowercase).
    pub fn to_id_string(&self) -> String {
        if self.kind == Self::MULTI_REGION {
            format!("mrk-{}", hex::encode(self.bytes))
        } else {
            uuid::Uuid::from_bytes(self.bytes).to_string()
        }
    }
}

/// Reads a `KeyId` member. Bare ids and alias names live in the caller's account and region; an
/// ARN names its own account, and must name the caller's region (keys are regional).
pub fn parse_key_ref(input: &str, account: &str, region: &str) -> Result<KeyRef, AwsError> {
    if let Some(rest) = input.strip_prefix("arn:") {
        // arn:<partition>:kms:<region>:<account>:<resource>
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [_partition, service, arn_region, arn_account, resource] = parts.as_slice() else {
            return Err(errors::invalid_key_id(input));
        };
        if *service != "kms" || arn_account.len() != 12 {
            return Err(errors::invalid_key_id(input));
        }
        if *arn_region != region {
            return Err(errors::not_found(format!("Invalid arn {arn_region}")));
        }
        if let Some(id) = resource.strip_prefix("key/") {
            if !is_key_id(id) {
                return Err(errors::invalid_key_id(input));
            }
            return Ok(KeyRef::Key {
                account: (*arn_account).to_owned(),
                region: region.to_owned(),
                id: id.to_owned(),
            });
        }
        if resource.starts_with("alias/") {
            return Ok(KeyRef::Alias {
                account: (*arn_account).to_owned(),
                region: region.to_owned(),
                name: (*resource).to_owned(),
            });
        }
        return Err(errors::invalid_key_id(input));
    }
    if input.starts_with("alias/") {
        return Ok(KeyRef::Alias {
            account: account.to_owned(),
            region: region.to_owned(),
            name: input.to_owned(),
        });
    }
    if is_key_id(input) {
        return Ok(KeyRef::Key {
            account: account.to_owned(),
            region: region.to_owned(),
            id: input.to_owned(),
        });
    }
    Err(errors::invalid_key_id(input))
}

/// Checks an alias name given to CreateAlias/UpdateAlias/DeleteAlias (the model has already
/// checked its length and character set).
pub fn check_alias_name(name: &str) -> Result<(), AwsError> {
    let Some(rest) = name.strip_prefix("alias/") else {
        return Err(AwsError::validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
        ));
    };
    if rest.starts_with("aws/") {
        // AWS answers the reserved prefix with a bare NotAuthorizedException.
        return Err(AwsError::without_message(400, "NotAuthorizedException"));
    }
    if rest.is_empty() || rest.contains(':') {
        return Err(AwsError::validation(format!(
            "{name} contains invalid characters for an alias"
        )));
    }
    Ok(())
}

/// Applies `add` to `tags` after AWS's checks: no duplicate keys in one request, no `aws:`
/// prefix, at most [`MAX_TAGS`] afterwards. Tags already present get the new value.
pub fn merge_tags(tags: &mut BTreeMap<String, String>, add: &[Tag]) -> Result<(), AwsError> {
    let mut seen = BTreeSet::new();
    for t in add {
        let key = t.tag_key.as_deref().unwrap_or_default();
        if !seen.insert(key) {
            return Err(errors::tag_error("Duplicate tag keys"));
        }
        if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(errors::tag_error("Tags beginning with aws: are reserved"));
        }
    }
    let mut next = tags.clone();
    for t in add {
        next.insert(
            t.tag_key.clone().unwrap_or_default(),
            t.tag_value.clone().unwrap_or_default(),
        );
    }
    if next.len() > MAX_TAGS {
        return Err(errors::tag_error("Too many tags"));
    }
    *tags = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn key_ids_arns_and_aliases_resolve_to_their_account_and_region() {
        let me = ("111122223333", "us-east-1");
        assert_eq!(
            parse_key_ref(ID, me.0, me.1).unwrap(),
            KeyRef::Key {
                account: me.0.into(),
                region: me.1.into(),
                id: ID.into()
            }
        );
        let arn = format!("arn:aws:kms:us-east-1:444455556666:key/{ID}");
        assert_eq!(
            parse_key_ref(&arn, me.0, me.1).unwrap(),
            KeyRef::Key {
                account: "444455556666".into(),
                region: me.1.into(),
                id: ID.into()
            }
        );
        assert_eq!(
            parse_key_ref("alias/app", me.0, me.1).unwrap(),
            KeyRef::Alias {
                account: me.0.into(),
                region: me.1.into(),
                name: "alias/app".into()
            }
        );
        assert_eq!(
            parse_key_ref("arn:aws:kms:us-east-1:111122223333:alias/app", me.0, me.1).unwrap(),
            KeyRef::Alias {
                account: me.0.into(),
                region: me.1.into(),
                name: "alias/app".into()
            }
        );
    }

    #[test]
    fn key_ids_pack_and_unpack() {
        for id in [ID, "mrk-1234abcd12ab34cd56ef1234567890ab"] {
            let p = PackedKeyId::parse(id).unwrap();
            assert_eq!(p.to_id_string(), id);
            assert_eq!(PackedKeyId::from_parts(p.kind, &p.bytes), Some(p));
        }
        for bad in [
            "mrk-1234abcd12ab34cd56ef1234567890a",
            "mrk-1234ABCD12ab34cd56ef1234567890ab",
            "mrk-1234abcd-12ab-34cd-56ef-1234567890ab",
            "1234abcd12ab34cd56ef1234567890ab",
        ] {
            assert!(!is_key_id(bad), "{bad}");
        }
        assert!(PackedKeyId::from_parts(3, &[0; 16]).is_none());
    }

    #[test]
    fn bad_key_ids_get_aws_messages() {
        let e = parse_key_ref("fake-key-id", "111122223333", "us-east-1").unwrap_err();
        assert_eq!(e.code, "NotFoundException");
        assert_eq!(e.message.unwrap(), "Invalid keyId 'fake-key-id'");
        let e = parse_key_ref(
            &format!("arn:aws:kms:eu-west-1:111122223333:key/{ID}"),
            "111122223333",
            "us-east-1",
        )
        .unwrap_err();
        assert_eq!(e.message.unwrap(), "Invalid arn eu-west-1");
        for bad in [
            "arn:aws:s3:::bucket",
            "arn:aws:kms:us-east-1:111122223333:key/nope",
            "arn:aws:kms:us-east-1:1:key/x",
        ] {
            assert_eq!(
                parse_key_ref(bad, "111122223333", "us-east-1")
                    .unwrap_err()
                    .code,
                "NotFoundException",
                "{bad}"
            );
        }
    }

    #[test]
    fn alias_names_follow_aws_rules() {
        assert!(check_alias_name("alias/my-alias_/").is_ok());
        let e = check_alias_name("my-alias").unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(
            e.message
                .unwrap()
                .starts_with("Alias must start with the prefix \"alias/\"")
        );
        let e = check_alias_name("alias/aws/ebs").unwrap_err();
        assert_eq!(e.code, "NotAuthorizedException");
        assert_eq!(e.message, None);
        let e = check_alias_name("alias/my:alias").unwrap_err();
        assert_eq!(
            e.message.unwrap(),
            "alias/my:alias contains invalid characters for an alias"
        );
        assert!(check_alias_name("alias/").is_err());
    }

    fn tag(k: &str, v: &str) -> Tag {
        Tag {
            tag_key: Some(k.into()),
            tag_value: Some(v.into()),
        }
    }

    #[test]
    fn tag_rules() {
        let mut tags = BTreeMap::new();
        merge_tags(&mut tags, &[tag("a", "1"), tag("b", "2")]).unwrap();
        merge_tags(&mut tags, &[tag("a", "3")]).unwrap();
        assert_eq!(tags.get("a").unwrap(), "3");
        let e = merge_tags(&mut tags, &[tag("c", "1"), tag("c", "2")]).unwrap_err();
        assert_eq!(e.code, "TagException");
        assert_eq!(e.message.unwrap(), "Duplicate tag keys");
        let e = merge_tags(&mut tags, &[tag("AWS:x", "1")]).unwrap_err();
        assert_eq!(e.message.unwrap(), "Tags beginning with aws: are reserved");
        let many: Vec<Tag> = (0..49).map(|i| tag(&format!("k{i}"), "v")).collect();
        let e = merge_tags(&mut tags, &many).unwrap_err();
        assert_eq!(e.message.unwrap(), "Too many tags");
        // A failed merge changes nothing.
        assert_eq!(tags.len(), 2);
    }
}
