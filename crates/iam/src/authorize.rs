use citadel_api::{AwsError, Principal, PrincipalKind};

/// The outcome of authorizing one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the error to return.
    Deny(AwsError),
}

/// Decides whether `principal` may perform `action` (`kms:Encrypt`) on `resource` (an ARN or
/// `*`). In `--dev` mode every caller acts with root's permissions.
///
/// The only identities that exist yet are account roots, which AWS lets do everything in their
/// own account. Anything else is implicitly denied, because no identity-based policy can
/// allow it until policies exist: that is AWS's answer too, and never a silent allow.
pub fn authorize(principal: &Principal, action: &str, resource: &str, dev_mode: bool) -> Decision {
    if dev_mode || principal.kind == PrincipalKind::Root {
        return Decision::Allow;
    }
    // AWS answers GetCallerIdentity for every authenticated caller: no policy can deny it.
    if action == "sts:GetCallerIdentity" {
        return Decision::Allow;
    }
    Decision::Deny(AwsError::new(
        400,
        "AccessDeniedException",
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action",
            principal.arn
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_allowed_and_others_are_implicitly_denied() {
        let root = Principal::root("111122223333", "AKIAEXAMPLE");
        assert_eq!(authorize(&root, "kms:Encrypt", "*", false), Decision::Allow);
        let mut user = root.clone();
        user.kind = PrincipalKind::User;
        user.arn = "arn:aws:iam::111122223333:user/alice".into();
        match authorize(
            &user,
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:111122223333:key/k",
            false,
        ) {
            Decision::Deny(e) => assert_eq!(
                e.message.as_deref(),
                Some(
                    "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/k because no identity-based policy allows the kms:Decrypt action"
                )
            ),
            Decision::Allow => panic!("a user without policies must be denied"),
        }
        assert_eq!(authorize(&user, "kms:Decrypt", "*", true), Decision::Allow);
        assert_eq!(
            authorize(&user, "sts:GetCallerIdentity", "*", false),
            Decision::Allow
        );
    }
}
