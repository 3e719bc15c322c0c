//! AWS STS (awsQuery).
