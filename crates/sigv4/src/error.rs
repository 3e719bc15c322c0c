use citadel_api::AwsError;

/// Why a request failed SigV4 authentication (or could not be signed).
///
/// `Display` is the message AWS sends for the same failure; [`SigV4Error::to_aws_error`] adds
/// the code and HTTP status, which differ between JSON-protocol services (KMS, Secrets Manager,
/// SSM, ACM, WAFv2) and awsQuery services (STS, IAM).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("Missing Authentication Token")]
    MissingAuthentication,

    /// An `Authorization` header and presigned query parameters at once.
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified"
    )]
    MultipleAuthMechanisms,

    /// The `Authorization` header or the presigned query parameters are incomplete or malformed.
    /// The message is already in AWS's words and may quote the header back, as AWS does.
    #[error("{message}")]
    Incomplete { message: String },

    /// An algorithm other than `AWS4-HMAC-SHA256` (SigV2, SigV4a, anything else).
    #[error(
        "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
    )]
    UnsupportedAlgorithm { algorithm: String },

    /// The credential is not `keyid/date/region/service/aws4_request`.
    #[error(
        "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
    )]
    MalformedCredential { credential: String },

    /// The credential scope does not end in `aws4_request`.
    #[error(
        "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
    )]
    InvalidTerminator { terminator: String },

    /// `host`, or the `Date` header that carries the request time, is missing from the signed
    /// headers, so the signature would not bind the request to its target or its time.
    #[error("'{header}' must be a 'SignedHeader' in the AWS Authorization.")]
    MustBeSigned { header: &'static str },

    /// `x-amz-*` headers that are present but not covered by the signature.
    #[error(
        "There were headers present in the request which were not signed (HeadersNotSigned: {})",
        headers.join(", ")
    )]
    HeadersNotSigned { headers: Vec<String> },

    /// The request time is more than 15 minutes behind the server clock, or a presigned URL
    /// outlived its `X-Amz-Expires`. `window` reads like `15 min.`.
    #[error("Signature expired: {request_time} is now earlier than {earliest} ({now} - {window})")]
    Expired {
        request_time: String,
        earliest: String,
        now: String,
        window: String,
    },

    /// The request time is more than 15 minutes ahead of the server clock.
    #[error(
        "Signature not yet current: {request_time} is still later than {latest} ({now} + {window})"
    )]
    NotYetCurrent {
        request_time: String,
        latest: String,
        now: String,
        window: String,
    },

    /// The date in the credential scope is not the day of the request time.
    #[error(
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{request_date}', from '{request_time}'."
    )]
    ScopeDateMismatch {
        scope_date: String,
        request_date: String,
        request_time: String,
    },

    /// The credential is scoped to another service than the one the request was routed to.
    #[error("Credential should be scoped to correct service: '{expected}'. ")]
    WrongService { expected: String },

    /// The credential is scoped to a region this deployment does not serve.
    #[error("Credential should be scoped to a valid region, not '{region}'. ")]
    InvalidRegion { region: String },

    /// `x-amz-content-sha256` names a body other than the one received.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    PayloadHashMismatch,

    /// `x-amz-content-sha256` is neither a SHA-256 hex digest nor `UNSIGNED-PAYLOAD`, or is
    /// `UNSIGNED-PAYLOAD` on a header-signed request, whose body must be signed.
    #[error(
        "x-amz-content-sha256 '{value}' is not accepted: a request signed in the Authorization header must sign its payload with the hex SHA-256 of the body."
    )]
    UnsignedPayload { value: String },

    /// The recomputed signature differs from the one sent.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    SignatureMismatch,

    /// The access key id is unknown. [`crate::verify`] never returns this: the server does,
    /// after its credential lookup misses, so that the error reads as AWS's.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,

    /// A request handed to [`crate::sign`] or [`crate::presign`] cannot be signed. Never
    /// produced while verifying.
    #[error("cannot sign the request: {reason}")]
    Signing { reason: String },
}

/// The AWS error families SigV4 failures fall into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Missing,
    Incomplete,
    InvalidSignature,
    UnknownClient,
}

impl SigV4Error {
    pub(crate) fn incomplete(message: impl Into<String>) -> Self {
        SigV4Error::Incomplete {
            message: message.into(),
        }
    }

    pub(crate) fn signing(reason: impl Into<String>) -> Self {
        SigV4Error::Signing {
            reason: reason.into(),
        }
    }

    fn family(&self) -> Family {
        match self {
            SigV4Error::MissingAuthentication => Family::Missing,
            SigV4Error::MultipleAuthMechanisms
            | SigV4Error::Incomplete { .. }
            | SigV4Error::UnsupportedAlgorithm { .. }
            | SigV4Error::MalformedCredential { .. }
            | SigV4Error::InvalidTerminator { .. }
            | SigV4Error::MustBeSigned { .. }
            | SigV4Error::HeadersNotSigned { .. }
            | SigV4Error::Signing { .. } => Family::Incomplete,
            SigV4Error::Expired { .. }
            | SigV4Error::NotYetCurrent { .. }
            | SigV4Error::ScopeDateMismatch { .. }
            | SigV4Error::WrongService { .. }
            | SigV4Error::InvalidRegion { .. }
            | SigV4Error::PayloadHashMismatch
            | SigV4Error::UnsignedPayload { .. }
            | SigV4Error::SignatureMismatch => Family::InvalidSignature,
            SigV4Error::UnknownAccessKey => Family::UnknownClient,
        }
    }

    /// The error AWS answers for this failure.
    ///
    /// `query_protocol` selects the awsQuery flavour (STS, IAM): codes without the `Exception`
    /// suffix and 403 for everything but `IncompleteSignature`, which AWS answers with 400 there
    /// too. JSON-protocol services answer every SigV4 failure with 400.
    pub fn to_aws_error(&self, query_protocol: bool) -> AwsError {
        let family = self.family();
        if query_protocol {
            let (status, code) = match family {
                Family::Missing => (403, "MissingAuthenticationToken"),
                Family::Incomplete => (400, "IncompleteSignature"),
                Family::InvalidSignature => (403, "SignatureDoesNotMatch"),
                Family::UnknownClient => (403, "InvalidClientTokenId"),
            };
            let message = match self {
                SigV4Error::MissingAuthentication => {
                    "Request is missing Authentication Token".to_owned()
                }
                other => other.to_string(),
            };
            AwsError::new(status, code, message)
        } else {
            let code = match family {
                Family::Missing => "MissingAuthenticationTokenException",
                Family::Incomplete => "IncompleteSignatureException",
                Family::InvalidSignature => "InvalidSignatureException",
                Family::UnknownClient => "UnrecognizedClientException",
            };
            AwsError::new(400, code, self.to_string())
        }
    }
}
