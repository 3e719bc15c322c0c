/// Who made a request, as established by SigV4 verification and the credential store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub account_id: String,
    /// `arn:aws:iam::123456789012:root`, `…:user/alice`, `arn:aws:sts::…:assumed-role/R/s`.
    pub arn: String,
    /// The `UserId` STS reports: the account id for root, `AIDA…` for users,
    /// `AROA…:session` for assumed roles.
    pub user_id: String,
    /// The access key id that signed the request.
    pub access_key_id: String,
    pub kind: PrincipalKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Root,
    User,
    AssumedRole,
}

impl Principal {
    /// The root principal of `account_id`, signing with `access_key_id`.
    pub fn root(account_id: &str, access_key_id: &str) -> Self {
        Principal {
            account_id: account_id.to_owned(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            user_id: account_id.to_owned(),
            access_key_id: access_key_id.to_owned(),
            kind: PrincipalKind::Root,
        }
    }
}
