//! Identity: credential lookup for SigV4, principals, and (later) the policy engine every operation passes through.
