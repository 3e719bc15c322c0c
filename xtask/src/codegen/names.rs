//! Naming rules from model names to Rust identifiers and AWS validation paths.

const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Splits an identifier into words at case boundaries: `KMSKeyId` → `KMS`, `Key`, `Id`;
/// `NumberOfBytes` → `Number`, `Of`, `Bytes`; `Ec2InstanceId` → `Ec2`, `Instance`, `Id`.
fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if !cur.is_empty() && c.is_ascii_uppercase() {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// `KeyId` → `key_id`; Rust keywords get a trailing underscore (`Type` → `type_`).
pub fn field_name(member: &str) -> String {
    let s = words(member)
        .iter()
        .map(|w| w.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join("_");
    if KEYWORDS.contains(&s.as_str()) {
        format!("{s}_")
    } else {
        s
    }
}

/// Shape name → Rust type name: the shape name with its first letter upper-cased
/// (`roleNameType` → `RoleNameType`).
pub fn type_name(shape: &str) -> String {
    let mut c = shape.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// Enum value → variant: words joined in UpperCamel case; all-caps words are title-cased
/// (`RSAES_OAEP_SHA_256` → `RsaesOaepSha256`, `aws-managed` → `AwsManaged`,
/// `PendingDeletion` → `PendingDeletion`). A leading digit gets a `V` prefix.
pub fn variant_name(value: &str) -> String {
    let mut out = String::new();
    for part in value.split(|c: char| !c.is_ascii_alphanumeric()) {
        if part.is_empty() {
            continue;
        }
        let has_lower = part.chars().any(|c| c.is_ascii_lowercase());
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            if has_lower {
                out.push_str(chars.as_str());
            } else {
                out.push_str(&chars.as_str().to_ascii_lowercase());
            }
        }
    }
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    if out == "Self" {
        out.push('_');
    }
    out
}

/// Member name → the segment AWS's validator prints: the first letter lower-cased
/// (`KeyId` → `keyId`, `NumberOfBytes` → `numberOfBytes`).
pub fn path_name(member: &str) -> String {
    let mut c = member.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `KeyIdType` → `KEY_ID_TYPE` (for statics).
pub fn screaming(shape: &str) -> String {
    words(shape)
        .iter()
        .map(|w| w.to_ascii_uppercase())
        .collect::<Vec<_>>()
        .join("_")
}

/// Service id → module name (`acm-pca` → `acm_pca`).
pub fn module_name(service: &str) -> String {
    service.replace('-', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields() {
        assert_eq!(field_name("KeyId"), "key_id");
        assert_eq!(field_name("NumberOfBytes"), "number_of_bytes");
        assert_eq!(field_name("KMSKeyId"), "kms_key_id");
        assert_eq!(field_name("ARN"), "arn");
        assert_eq!(field_name("CertificateARN"), "certificate_arn");
        assert_eq!(field_name("Type"), "type_");
        assert_eq!(field_name("Ec2InstanceId"), "ec2_instance_id");
        assert_eq!(field_name("message"), "message");
    }

    #[test]
    fn variants() {
        assert_eq!(variant_name("RSAES_OAEP_SHA_256"), "RsaesOaepSha256");
        assert_eq!(variant_name("SYMMETRIC_DEFAULT"), "SymmetricDefault");
        assert_eq!(variant_name("aws-managed"), "AwsManaged");
        assert_eq!(variant_name("PendingDeletion"), "PendingDeletion");
        assert_eq!(variant_name("AWS::EC2::Instance"), "AwsEc2Instance");
        assert_eq!(variant_name("2048"), "V2048");
    }

    #[test]
    fn paths() {
        assert_eq!(path_name("KeyId"), "keyId");
        assert_eq!(path_name("NumberOfBytes"), "numberOfBytes");
        assert_eq!(screaming("KeyIdType"), "KEY_ID_TYPE");
        assert_eq!(screaming("roleNameType"), "ROLE_NAME_TYPE");
    }
}
