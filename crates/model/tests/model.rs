//! Behaviour of the generated model: specs, JSON round-trips, AWS-worded validation, awsQuery.

use citadel_api::MessageField;
use citadel_model::{
    Blob, SensitiveBlob, SensitiveString, Timestamp, acm, all_specs, iam, kms, organizations,
    secretsmanager, ssm, sts, wafv2,
};

#[allow(clippy::unwrap_used)]
fn validation_message(r: Result<(), citadel_api::AwsError>) -> String {
    let e = r.unwrap_err();
    assert_eq!(e.status, 400);
    e.message.unwrap()
}

// ---------------------------------------------------------------------------------- specs

#[test]
fn specs_match_the_models() {
    let expected = [
        (&kms::SPEC, "kms", 54),
        (&secretsmanager::SPEC, "secretsmanager", 23),
        (&ssm::SPEC, "ssm", 146),
        (&acm::SPEC, "acm", 17),
        (&wafv2::SPEC, "wafv2", 55),
        (&organizations::SPEC, "organizations", 63),
    ];
    for (spec, name, ops) in expected {
        assert_eq!(spec.name, name);
        assert_eq!(spec.operations.len(), ops, "{name}");
    }
    let names: Vec<&str> = all_specs().iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "acm",
            "acm-pca",
            "cloudtrail",
            "events",
            "iam",
            "kms",
            "organizations",
            "secretsmanager",
            "ssm",
            "sts",
            "wafv2"
        ]
    );
    for spec in all_specs() {
        assert!(
            spec.operations.windows(2).all(|w| w[0].name < w[1].name),
            "{} operations sorted",
            spec.name
        );
        assert!(
            spec.errors.windows(2).all(|w| w[0].code < w[1].code),
            "{} errors sorted",
            spec.name
        );
        for op in spec.operations {
            assert_eq!(spec.operation(op.name).map(|o| o.name), Some(op.name));
        }
    }
}

#[test]
fn spec_details() {
    let enc = kms::SPEC.operation("Encrypt").unwrap();
    assert_eq!(enc.input, Some("EncryptRequest"));
    assert_eq!(enc.output, Some("EncryptResponse"));
    assert!(enc.errors.contains(&"NotFoundException"));
    assert_eq!(kms::SPEC.target_prefix, Some("TrentService"));
    assert_eq!(kms::SPEC.protocol, citadel_api::Protocol::AwsJson1_1);
    assert_eq!(kms::SPEC.signing_name, "kms");

    let nf = kms::SPEC.error("NotFoundException").unwrap();
    assert_eq!((nf.http_status, nf.server_fault), (400, false));
    let internal = kms::SPEC.error("KMSInternalException").unwrap();
    assert_eq!((internal.http_status, internal.server_fault), (500, true));

    assert_eq!(kms::SPEC.default_message_field, MessageField::Lower);
    assert_eq!(
        kms::SPEC.message_field_for("NotFoundException"),
        MessageField::Lower
    );
    assert_eq!(
        secretsmanager::SPEC.default_message_field,
        MessageField::Upper
    );
    assert_eq!(
        secretsmanager::SPEC.message_field_for("ResourceNotFoundException"),
        MessageField::Upper
    );

    // awsQuery: codes come from the error trait, with its HTTP status.
    assert_eq!(sts::SPEC.protocol, citadel_api::Protocol::AwsQuery);
    assert_eq!(sts::SPEC.api_version, "2011-06-15");
    let e = sts::SPEC.error("IDPRejectedClaim").unwrap();
    assert_eq!(e.http_status, 403);
    assert!(sts::SPEC.error("IDPRejectedClaimException").is_none());
    let e = iam::SPEC.error("NoSuchEntity").unwrap();
    assert_eq!(e.http_status, 404);
    let e = iam::SPEC.error("ServiceFailure").unwrap();
    assert!(e.server_fault && e.http_status == 500);
    assert!(
        iam::SPEC
            .operation("GetUser")
            .unwrap()
            .errors
            .contains(&"NoSuchEntity")
    );
}

// ---------------------------------------------------------------------------------- JSON

#[test]
fn encrypt_request_round_trip_and_redaction() {
    let json = r#"{"KeyId":"alias/app","Plaintext":"c2VjcmV0IHBsYWludGV4dA==",
        "EncryptionContext":{"purpose":"test"},"Unknown":{"ignored":[1,2]}}"#;
    let req: kms::EncryptRequest = serde_json::from_str(json).unwrap();
    assert_eq!(req.key_id.as_deref(), Some("alias/app"));
    assert_eq!(
        req.plaintext.as_ref().unwrap().as_bytes(),
        b"secret plaintext"
    );
    assert_eq!(req.grant_tokens, None);
    req.validate().unwrap();

    let debug = format!("{req:?}");
    assert!(!debug.contains("secret plaintext"), "{debug}");
    assert!(!debug.contains("c2VjcmV0"), "{debug}");
    assert!(!debug.contains("115, 101, 99"), "{debug}");
    assert!(debug.contains("**redacted**"));

    let back = serde_json::to_value(&req).unwrap();
    assert_eq!(back["Plaintext"], "c2VjcmV0IHBsYWludGV4dA==");
    assert!(
        back.get("GrantTokens").is_none(),
        "None members are omitted"
    );

    for bad in [
        r#"{"KeyId":"k","Plaintext":"not base64!"}"#,
        r#"{"KeyId":"k","Plaintext":"c2VjcmV0"}"#.replace("c2VjcmV0", "c2VjcmV").as_str(),
        r#"{"KeyId":"k","Plaintext":42}"#,
    ] {
        let e = serde_json::from_str::<kms::EncryptRequest>(bad).unwrap_err();
        assert!(!e.to_string().contains("not base64!"));
    }
}

#[test]
fn outputs_serialize_like_aws() {
    let out = kms::EncryptResponse {
        ciphertext_blob: Some(Blob::new(b"\x01\x02".to_vec())),
        key_id: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
        encryption_algorithm: Some(
            kms::EncryptionAlgorithmSpec::SymmetricDefault
                .as_str()
                .into(),
        ),
    };
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "CiphertextBlob": "AQI=",
            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/k",
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"
        })
    );
    let meta = kms::KeyMetadata {
        creation_date: Some(Timestamp::from_epoch_millis(1_700_000_000_123)),
        ..Default::default()
    };
    assert_eq!(
        serde_json::to_string(&meta).unwrap(),
        r#"{"CreationDate":1700000000.123}"#
    );
    let secret = secretsmanager::GetSecretValueResponse {
        secret_string: Some(SensitiveString::from("hunter2")),
        secret_binary: Some(SensitiveBlob::new(b"hunter2".to_vec())),
        ..Default::default()
    };
    let debug = format!("{secret:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("aHVudGVy"),
        "{debug}"
    );
    assert_eq!(
        serde_json::to_value(&secret).unwrap()["SecretString"],
        "hunter2"
    );
}

#[test]
fn enums() {
    use std::str::FromStr;
    assert_eq!(
        kms::EncryptionAlgorithmSpec::VALUES,
        [
            "SYMMETRIC_DEFAULT",
            "RSAES_OAEP_SHA_1",
            "RSAES_OAEP_SHA_256",
            "SM2PKE"
        ]
    );
    assert_eq!(
        kms::EncryptionAlgorithmSpec::from_str("RSAES_OAEP_SHA_256"),
        Ok(kms::EncryptionAlgorithmSpec::RsaesOaepSha256)
    );
    assert!(kms::EncryptionAlgorithmSpec::from_str("rsaes_oaep_sha_256").is_err());
    assert_eq!(kms::KeyState::PendingDeletion.as_str(), "PendingDeletion");
    assert_eq!(
        kms::KeyState::PendingDeletion.to_string(),
        "PendingDeletion"
    );
}

// ---------------------------------------------------------------------------------- validation

#[test]
fn validation_messages_read_like_aws() {
    let req = kms::GenerateDataKeyRequest {
        key_id: Some("k".into()),
        number_of_bytes: Some(1025),
        ..Default::default()
    };
    let e = req.validate().unwrap_err();
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        )
    );

    let req = kms::GenerateDataKeyRequest::default();
    assert_eq!(
        validation_message(req.validate()),
        "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
    );

    let req = kms::EncryptRequest {
        key_id: Some("k".into()),
        plaintext: Some(SensitiveBlob::new(vec![1])),
        encryption_algorithm: Some("AES".into()),
        ..Default::default()
    };
    assert_eq!(
        validation_message(req.validate()),
        "1 validation error detected: Value 'AES' at 'encryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]"
    );

    // Several violations, in member order; a sensitive value is never printed.
    let req = kms::EncryptRequest {
        key_id: Some(String::new()),
        plaintext: Some(SensitiveBlob::new(vec![7; 4097])),
        ..Default::default()
    };
    assert_eq!(
        validation_message(req.validate()),
        "2 validation errors detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1; Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
}

#[test]
fn collections_are_validated_the_aws_way() {
    // List length, then element constraints reported on the list with its Java rendering.
    let req = kms::EncryptRequest {
        key_id: Some("k".into()),
        plaintext: Some(SensitiveBlob::new(vec![1])),
        grant_tokens: Some(vec![String::new(), "t".into()]),
        ..Default::default()
    };
    assert_eq!(
        validation_message(req.validate()),
        "1 validation error detected: Value '[, t]' at 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 8192, Member must have length greater than or equal to 1]"
    );

    // Structures inside lists: `parent.N.member.child`, 1-based.
    let req = kms::TagResourceRequest {
        key_id: Some("k".into()),
        tags: Some(vec![
            kms::Tag {
                tag_key: Some("ok".into()),
                tag_value: Some("v".into()),
            },
            kms::Tag {
                tag_key: None,
                tag_value: Some("v".into()),
            },
        ]),
    };
    assert_eq!(
        validation_message(req.validate()),
        "1 validation error detected: Value null at 'tags.2.member.tagKey' failed to satisfy constraint: Member must not be null"
    );
}

#[test]
fn patterns_use_java_semantics() {
    let ok = sts::AssumeRoleRequest {
        role_arn: Some("arn:aws:iam::111122223333:role/r".into()),
        role_session_name: Some("session@1".into()),
        ..Default::default()
    };
    ok.validate().unwrap();
    // Java's `\w` is ASCII-only.
    let bad = sts::AssumeRoleRequest {
        role_session_name: Some("sé".into()),
        ..ok.clone()
    };
    let e = bad.validate().unwrap_err();
    assert_eq!(
        e.code, "ValidationError",
        "awsQuery services say ValidationError"
    );
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value 'sé' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
        )
    );
}

// ---------------------------------------------------------------------------------- awsQuery

fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn query_input_with_lists() {
    let req = iam::TagUserRequest::from_query(&params(&[
        ("UserName", "alice"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "blue"),
        ("Tags.member.2.Key", "cost center"),
        ("Tags.member.2.Value", "42"),
    ]))
    .unwrap();
    assert_eq!(req.user_name.as_deref(), Some("alice"));
    let tags = req.tags.as_ref().unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[1].key.as_deref(), Some("cost center"));
    assert_eq!(tags[1].value.as_deref(), Some("42"));
    req.validate().unwrap();

    let bad = iam::TagUserRequest::from_query(&params(&[
        ("UserName", "alice"),
        ("Tags.member.1.Key", "team"),
        ("Tags.member.1.Value", "$179&"),
    ]))
    .unwrap();
    let e = bad.validate().unwrap_err();
    assert_eq!(e.code, "ValidationError");
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value '$179&' at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*"
        )
    );

    let req = iam::GetAccountAuthorizationDetailsRequest::from_query(&params(&[
        ("Filter.member.1", "User"),
        ("Filter.member.2", "Role"),
        ("MaxItems", "100"),
    ]))
    .unwrap();
    assert_eq!(req.filter, Some(vec!["User".into(), "Role".into()]));
    assert_eq!(req.max_items, Some(100));

    let req = sts::AssumeRoleRequest::from_query(&params(&[
        ("RoleArn", "arn:aws:iam::111122223333:role/r"),
        ("RoleSessionName", "s"),
        (
            "PolicyArns.member.1.arn",
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
        ),
        ("TransitiveTagKeys.member.1", "team"),
    ]))
    .unwrap();
    assert_eq!(
        req.policy_arns.unwrap()[0].arn.as_deref(),
        Some("arn:aws:iam::aws:policy/ReadOnlyAccess")
    );
    assert_eq!(req.transitive_tag_keys, Some(vec!["team".into()]));
}

#[test]
fn malformed_query_numbers_are_malformed_input() {
    let e = sts::AssumeRoleRequest::from_query(&params(&[
        ("RoleArn", "arn:aws:iam::111122223333:role/r"),
        ("RoleSessionName", "s"),
        ("DurationSeconds", "an hour"),
    ]))
    .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("MalformedInput", 400));
    assert!(!e.message.unwrap().contains("an hour"));
}

#[test]
fn query_output_xml() {
    let out = sts::GetCallerIdentityResponse {
        user_id: Some("AIDAEXAMPLE".into()),
        account: Some("111122223333".into()),
        arn: Some("arn:aws:iam::111122223333:user/a&b".into()),
    };
    let mut xml = String::new();
    out.to_query_xml(&mut xml);
    assert_eq!(
        xml,
        "<UserId>AIDAEXAMPLE</UserId><Account>111122223333</Account><Arn>arn:aws:iam::111122223333:user/a&amp;b</Arn>"
    );

    let out = sts::AssumeRoleResponse {
        credentials: Some(sts::Credentials {
            access_key_id: Some("ASIAEXAMPLE".into()),
            secret_access_key: Some("secret".into()),
            session_token: Some("token".into()),
            expiration: Timestamp::parse_iso8601("2011-07-15T23:28:33.359Z"),
        }),
        packed_policy_size: Some(6),
        ..Default::default()
    };
    let mut xml = String::new();
    out.to_query_xml(&mut xml);
    assert_eq!(
        xml,
        "<Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>2011-07-15T23:28:33.359Z</Expiration></Credentials><PackedPolicySize>6</PackedPolicySize>"
    );

    let out = iam::ListUsersResponse {
        users: Some(vec![iam::User {
            user_name: Some("alice".into()),
            create_date: Some(Timestamp::from_epoch_seconds(1_767_225_600)),
            ..Default::default()
        }]),
        is_truncated: Some(false),
        ..Default::default()
    };
    let mut xml = String::new();
    out.to_query_xml(&mut xml);
    assert_eq!(
        xml,
        "<Users><member><UserName>alice</UserName><CreateDate>2026-01-01T00:00:00Z</CreateDate></member></Users><IsTruncated>false</IsTruncated>"
    );
}

#[test]
fn recursive_shapes_nest_and_validate() {
    let json = r#"{"NotStatement":{"Statement":{"ByteMatchStatement":{
        "SearchString":"YmFk","FieldToMatch":{"UriPath":{}},
        "TextTransformations":[{"Priority":0,"Type":"NONE"},{"Priority":1,"Type":"BOGUS"}],
        "PositionalConstraint":"CONTAINS"}}}}"#;
    let st: wafv2::Statement = serde_json::from_str(json).unwrap();
    let inner = st
        .not_statement
        .as_ref()
        .unwrap()
        .statement
        .as_ref()
        .unwrap();
    let bm = inner.byte_match_statement.as_ref().unwrap();
    assert_eq!(bm.search_string.as_ref().unwrap().as_bytes(), b"bad");
    let mut errs = citadel_api::ValidationErrors::new();
    st.validate_into("statement", &mut errs);
    let msg = errs.into_result().unwrap_err().message.unwrap();
    assert!(
        msg.starts_with(
            "1 validation error detected: Value 'BOGUS' at 'statement.notStatement.statement.byteMatchStatement.textTransformations.2.member.type' failed to satisfy constraint: Member must satisfy enum value set: [NONE, "
        ),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------- check_input

fn json(body: &str) -> citadel_api::OperationInput {
    citadel_api::OperationInput::Json(body.as_bytes().to_vec().into())
}

fn query(p: &[(&str, &str)]) -> citadel_api::OperationInput {
    citadel_api::OperationInput::Query(params(p))
}

#[test]
fn check_input_decodes_and_validates_json_operations() {
    let e = citadel_model::check_input(
        "kms",
        "GenerateDataKey",
        &json(r#"{"KeyId":"k","NumberOfBytes":2000}"#),
    )
    .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("ValidationException", 400));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value '2000' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        )
    );
    // The module function is the same check.
    assert_eq!(
        kms::check_input(
            "GenerateDataKey",
            &json(r#"{"KeyId":"k","NumberOfBytes":2000}"#)
        )
        .unwrap_err()
        .message,
        e.message
    );

    let e =
        citadel_model::check_input("kms", "GenerateDataKey", &json(r#"{"KeyId": 5}"#)).unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("SerializationException", 400));

    citadel_model::check_input(
        "kms",
        "GenerateDataKey",
        &json(r#"{"KeyId":"k","NumberOfBytes":32}"#),
    )
    .unwrap();
    // An empty body is `{}`.
    let e = citadel_model::check_input("kms", "GenerateDataKey", &json("")).unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null"
        )
    );

    let e =
        citadel_model::check_input("secretsmanager", "GetSecretValue", &json("{}")).unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("ValidationException", 400));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null"
        )
    );
}

#[test]
fn check_input_decodes_and_validates_query_operations() {
    citadel_model::check_input("sts", "GetCallerIdentity", &query(&[])).unwrap();
    sts::check_input("GetCallerIdentity", &query(&[])).unwrap();

    let e = citadel_model::check_input("iam", "CreateUser", &query(&[])).unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("ValidationError", 400));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "1 validation error detected: Value null at 'userName' failed to satisfy constraint: Member must not be null"
        )
    );
    citadel_model::check_input("iam", "CreateUser", &query(&[("UserName", "alice")])).unwrap();

    let e = citadel_model::check_input(
        "sts",
        "AssumeRole",
        &query(&[
            ("RoleArn", "arn:aws:iam::111122223333:role/r"),
            ("RoleSessionName", "s"),
            ("DurationSeconds", "an hour"),
        ]),
    )
    .unwrap_err();
    assert_eq!(e.code, "MalformedInput");
}

#[test]
fn check_input_leaves_what_is_not_its_business_alone() {
    // Unknown service, unknown operation, operation without an input shape, wrong variant.
    citadel_model::check_input("nosuchservice", "GenerateDataKey", &json("{")).unwrap();
    citadel_model::check_input("kms", "NoSuchOperation", &json("{")).unwrap();
    let no_input = all_specs()
        .iter()
        .find_map(|s| {
            s.operations
                .iter()
                .find(|o| o.input.is_none())
                .map(|o| (s.name, o.name))
        })
        .expect("some operation has no input shape");
    citadel_model::check_input(no_input.0, no_input.1, &json("{"))
        .and(citadel_model::check_input(
            no_input.0,
            no_input.1,
            &query(&[("X", "y")]),
        ))
        .unwrap();
    citadel_model::check_input("kms", "GenerateDataKey", &query(&[])).unwrap();
    citadel_model::check_input("iam", "CreateUser", &json("{")).unwrap();
}

#[test]
fn check_input_reaches_every_service_and_operation() {
    // awsJson: every operation with an input shape decodes its body (malformed JSON is caught).
    for spec in all_specs() {
        if spec.protocol == citadel_api::Protocol::AwsQuery {
            continue;
        }
        let ops: Vec<_> = spec
            .operations
            .iter()
            .filter(|o| o.input.is_some())
            .collect();
        assert!(!ops.is_empty(), "{}", spec.name);
        for op in ops {
            let e = citadel_model::check_input(spec.name, op.name, &json("{\"x\":")).unwrap_err();
            assert_eq!(
                e.code, "SerializationException",
                "{} {}",
                spec.name, op.name
            );
        }
    }
    // awsQuery: both services are dispatched to (a malformed number is caught).
    for (service, op, member) in [
        ("sts", "AssumeRole", "DurationSeconds"),
        ("iam", "ListUsers", "MaxItems"),
    ] {
        let e = citadel_model::check_input(service, op, &query(&[(member, "x")])).unwrap_err();
        assert_eq!(e.code, "MalformedInput", "{service} {op}");
    }
}
