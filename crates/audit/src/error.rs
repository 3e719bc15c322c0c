use std::path::PathBuf;

/// Why the audit trail could not do something.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] citadel_store::StoreError),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("signing: {0}")]
    Crypto(String),
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("{0}")]
    Invalid(String),
}

impl AuditError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> AuditError {
        let path = path.into();
        move |source| AuditError::Io {
            action,
            path,
            source,
        }
    }
}

pub type Result<T, E = AuditError> = std::result::Result<T, E>;
