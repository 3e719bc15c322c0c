//! AWS Signature Version 4: parse, canonicalise, verify (header and presigned forms) and sign.
