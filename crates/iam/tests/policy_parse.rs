#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Parser tests: malformed documents and the messages AWS answers with, size limits, and the
//! error shapes per service.

use citadel_iam::policy::{
    ActionElement, AwsPrincipal, Effect, ErrorFlavour, IdentityPolicyKind, Policy, PolicyError,
    PolicyKind, PolicyVersion, PrincipalElement, ResourceElement,
};

const MANAGED: PolicyKind = PolicyKind::Identity(IdentityPolicyKind::Managed);

fn err(json: &str, kind: PolicyKind) -> PolicyError {
    match Policy::parse(json, kind) {
        Ok(_) => panic!("accepted: {json}"),
        Err(e) => e,
    }
}

fn msg(json: &str, kind: PolicyKind) -> String {
    err(json, kind).to_aws_error().message.unwrap()
}

#[test]
fn malformed_documents_get_aws_messages() {
    let cases: &[(&str, PolicyKind, &str)] = &[
        ("{", MANAGED, "Syntax errors in policy."),
        ("null", MANAGED, "Syntax errors in policy."),
        ("[]", MANAGED, "Syntax errors in policy."),
        (
            r#"{"Version":"2012-10-17","Statement":[]}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":"x"}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[1]}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17"}"#,
            MANAGED,
            "Missing required field Statement",
        ),
        (
            r#"{"Version":"2013-01-01","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Bogus":1,"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Id":5,"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Missing required field Effect",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Alow","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Invalid effect: Alow",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Invalid effect: allow",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":true,"Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}"#,
            MANAGED,
            "Policy statement must contain actions.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
            MANAGED,
            "Policy statement must contain actions.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*"}}"#,
            MANAGED,
            "Policy statement must contain resources.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":[]}}"#,
            MANAGED,
            "Policy statement must contain resources.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","NotAction":"s3:Get*","Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","NotResource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:*",3],"Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Extra":1}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
            MANAGED,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:Get:Object","Resource":"*"}}"#,
            MANAGED,
            "Actions/Condition can contain only one colon.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s 3:Get","Resource":"*"}}"#,
            MANAGED,
            "Vendor s 3 is not valid",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"bucket"}}"#,
            MANAGED,
            "Resource bucket must be in ARN format or \"*\".",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Policy document should not specify a principal.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":{"AWS":"*"},"Action":"s3:*","Resource":"*"}}"#,
            PolicyKind::Session,
            "Policy document should not specify a principal.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
            PolicyKind::Boundary,
            "Policy document should not specify a principal.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"a"}}}}"#,
            MANAGED,
            "Invalid Condition operator: StringEqualz",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"NullIfExists":{"aws:username":"true"}}}}"#,
            MANAGED,
            "Invalid Condition operator: NullIfExists",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":"x"}}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:username":{"a":1}}}}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"aws:username":null}}}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"username":"a"}}}}"#,
            MANAGED,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"next tuesday"}}}}"#,
            MANAGED,
            "The policy failed legacy parsing",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:*","Resource":"*"}]}"#,
            MANAGED,
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Sid":1,"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            MANAGED,
            "Syntax errors in policy.",
        ),
        // Resource-based and key policies must name principals, in IAM's accepted forms.
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Resource,
            "Missing required field Principal",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::KeyPolicy,
            "Missing required field Principal",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/*"},"Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Resource,
            "Invalid principal in policy: \"AWS\":\"arn:aws:iam::111122223333:role/*\"",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Resource,
            "Invalid principal in policy: \"AWS\":\"alice\"",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"IAM":"x"},"Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Resource,
            "Invalid principal in policy: \"IAM\":\"x\"",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":[]},"Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Resource,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Resource,
            "Syntax errors in policy.",
        ),
        // Trust policies.
        (
            "{not json",
            PolicyKind::Trust,
            "This policy contains invalid Json",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#,
            PolicyKind::Trust,
            "Missing required field Principal",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"}}"#,
            PolicyKind::Trust,
            "Has prohibited field Resource",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","NotResource":"*"}}"#,
            PolicyKind::Trust,
            "Has prohibited field NotResource",
        ),
        (
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"s3:GetObject"}}"#,
            PolicyKind::Trust,
            "AssumeRole policy may only specify STS AssumeRole actions.",
        ),
    ];
    for (json, kind, want) in cases {
        assert_eq!(msg(json, *kind), *want, "{json}");
    }
}

#[test]
fn error_shapes_per_service() {
    let e = err(
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*"}}"#,
        MANAGED,
    );
    let iam = e.to_aws_error();
    assert_eq!(
        (iam.status, iam.code.as_ref()),
        (400, "MalformedPolicyDocument")
    );
    let sts = e.to_aws_error_for(ErrorFlavour::Sts);
    assert_eq!(sts.code, "MalformedPolicyDocument");
    let kms = e.to_aws_error_for(ErrorFlavour::Kms);
    assert_eq!(
        (kms.status, kms.code.as_ref()),
        (400, "MalformedPolicyDocumentException")
    );
    assert_eq!(
        kms.message.as_deref(),
        Some("Policy statement must contain resources.")
    );
    let sm = e.to_aws_error_for(ErrorFlavour::SecretsManager);
    assert_eq!(sm.code, "MalformedPolicyDocumentException");

    let bad_principal = err(
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"nobody"},"Action":"kms:*","Resource":"*"}}"#,
        PolicyKind::KeyPolicy,
    );
    assert_eq!(
        bad_principal
            .to_aws_error_for(ErrorFlavour::Kms)
            .message
            .as_deref(),
        Some("Policy contains a statement with one or more invalid principals.")
    );
}

fn padded_doc(chars: usize) -> String {
    // A valid managed policy whose Sid pads it to exactly `chars` non-whitespace characters.
    let base = r#"{"Version":"2012-10-17","Statement":{"Sid":"","Effect":"Allow","Action":"s3:*","Resource":"*"}}"#;
    let pad = chars - base.len();
    base.replace(r#""Sid":"""#, &format!(r#""Sid":"{}""#, "A".repeat(pad)))
}

#[test]
fn size_limits_count_as_documented() {
    assert_eq!(MANAGED.max_size(), 6144);
    assert_eq!(
        PolicyKind::Identity(IdentityPolicyKind::UserInline).max_size(),
        2048
    );
    assert_eq!(
        PolicyKind::Identity(IdentityPolicyKind::RoleInline).max_size(),
        10240
    );
    assert_eq!(
        PolicyKind::Identity(IdentityPolicyKind::GroupInline).max_size(),
        5120
    );
    assert_eq!(PolicyKind::Trust.max_size(), 2048);
    assert_eq!(PolicyKind::Session.max_size(), 2048);
    assert_eq!(PolicyKind::Boundary.max_size(), 6144);
    assert_eq!(PolicyKind::KeyPolicy.max_size(), 32768);

    let at_limit = padded_doc(6144);
    assert_eq!(MANAGED.measure(&at_limit), 6144);
    Policy::parse(&at_limit, MANAGED).unwrap();
    // Whitespace does not count for IAM.
    let spaced = at_limit.replace(',', " ,\n  ");
    Policy::parse(&spaced, MANAGED).unwrap();
    let over = padded_doc(6145);
    let e = err(&over, MANAGED);
    assert_eq!(
        e,
        PolicyError::TooLarge {
            kind: MANAGED,
            size: 6145,
            max: 6144
        }
    );
    let aws = e.to_aws_error();
    assert_eq!((aws.status, aws.code.as_ref()), (409, "LimitExceeded"));
    assert_eq!(
        aws.message.as_deref(),
        Some("Cannot exceed quota for PolicySize: 6144")
    );

    let user = PolicyKind::Identity(IdentityPolicyKind::UserInline);
    let e = err(&padded_doc(2049), user);
    assert_eq!(
        e.to_aws_error_for_entity("alice").message.as_deref(),
        Some("Maximum policy size of 2048 bytes exceeded for user alice")
    );
    let trust_over = format!(
        r#"{{"Statement":{{"Sid":"{}","Effect":"Allow","Principal":{{"AWS":"111122223333"}},"Action":"sts:AssumeRole"}}}}"#,
        "A".repeat(2048)
    );
    assert_eq!(
        msg(&trust_over, PolicyKind::Trust),
        "Cannot exceed quota for ACLSizePerRole: 2048"
    );
    let kms = err(&" ".repeat(32769), PolicyKind::KeyPolicy).to_aws_error_for(ErrorFlavour::Kms);
    assert_eq!(kms.code, "LimitExceededException");
    // Session policies count every character, whitespace included.
    assert!(matches!(
        err(&" ".repeat(2049), PolicyKind::Session),
        PolicyError::TooLarge { .. }
    ));
}

#[test]
fn well_formed_documents_expose_their_parts() {
    let p = Policy::parse(
        r#"{
          "Version": "2012-10-17",
          "Id": "key-default-1",
          "Statement": [
            {"Sid": "Enable IAM User Permissions", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "NotPrincipal": {"AWS": ["111122223333", "arn:aws:iam::111122223333:user/a"]},
             "NotAction": ["kms:Describe*", "kms:Get*"], "NotResource": "arn:aws:kms:*:111122223333:key/x",
             "Condition": {"ForAnyValue:StringLikeIfExists": {"kms:EncryptionContextKeys": ["a*", 5, true]},
                           "Bool": {"aws:SecureTransport": false}}}
          ]
        }"#,
        PolicyKind::KeyPolicy,
    )
    .unwrap();
    assert_eq!(p.version(), PolicyVersion::V2012_10_17);
    assert!(p.version_given());
    assert_eq!(p.id(), Some("key-default-1"));
    assert_eq!(p.kind(), PolicyKind::KeyPolicy);
    let [s0, s1] = p.statements() else { panic!() };
    assert_eq!(s0.sid(), Some("Enable IAM User Permissions"));
    assert_eq!(s0.effect(), Effect::Allow);
    match s0.principal() {
        Some(PrincipalElement::Principal(set)) => {
            assert_eq!(set.aws, vec![AwsPrincipal::Account("111122223333".into())])
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s1.effect(), Effect::Deny);
    assert!(matches!(
        s1.principal(),
        Some(PrincipalElement::NotPrincipal(_))
    ));
    match s1.action() {
        ActionElement::NotAction(a) => assert_eq!(a[1].as_str(), "kms:Get*"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s1.resource(),
        Some(ResourceElement::NotResource(_))
    ));
    assert_eq!(s1.condition().entries().len(), 2);
    let keys: Vec<&str> = p.condition_keys().collect();
    assert!(keys.contains(&"kms:EncryptionContextKeys"));
    assert_eq!(p.principals().count(), 2);

    // No Version: 2008 semantics; a trust policy without Resource; Statement as an object.
    let t = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    assert_eq!(t.version(), PolicyVersion::V2008_10_17);
    assert!(!t.version_given());
    assert!(t.statements()[0].resource().is_none());
    Policy::parse(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"sts:*"}}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    // Every operator family parses, with IfExists and qualifiers.
    let ops = [
        "StringEquals",
        "StringNotEquals",
        "StringEqualsIgnoreCase",
        "StringNotEqualsIgnoreCase",
        "StringLike",
        "StringNotLike",
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "Bool",
        "BinaryEquals",
        "IpAddress",
        "NotIpAddress",
        "ArnEquals",
        "ArnNotEquals",
        "ArnLike",
        "ArnNotLike",
    ];
    for op in ops {
        for name in [
            op.to_owned(),
            format!("{op}IfExists"),
            format!("ForAllValues:{op}"),
            format!("ForAnyValue:{op}IfExists"),
        ] {
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{{"{name}":{{"aws:x":["1"]}}}}}}}}"#
            );
            Policy::parse(&doc, MANAGED).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    for op in [
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEqualsIfExists",
    ] {
        let doc = format!(
            r#"{{"Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{{"{op}":{{"aws:CurrentTime":["2020-01-01T00:00:00Z", 1700000000]}}}}}}}}"#
        );
        Policy::parse(&doc, MANAGED).unwrap();
    }
    Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"Null":{"aws:TokenIssueTime":"true"}}}}"#,
        MANAGED,
    )
    .unwrap();
}

#[test]
fn compiled_policies_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Policy>();
    assert_send_sync::<citadel_iam::policy::EvalContext>();
    assert_send_sync::<PolicyError>();
}
