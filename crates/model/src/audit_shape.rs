//! The shape tree the audit trail walks: the type of the generated `AUDIT_SHAPES` tables. With
//! it the trail hides every value the model marks `sensitive` (plaintexts, secret values,
//! passwords, secret access keys) wherever it sits, and tells structure members (whose names
//! CloudTrail writes in lowerCamelCase) from map keys (kept as sent).

/// One shape of a service model, as far as the audit trail cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditShape {
    /// The model marks the shape `sensitive`: its whole value is hidden.
    Sensitive,
    /// A structure and its members `(wire name, target shape)`, in model order.
    Structure(&'static [(&'static str, &'static str)]),
    /// A list of the named shape.
    List(&'static str),
    /// A map (string keys) to the named shape.
    Map(&'static str),
}

/// The entry for `shape` in an `AUDIT_SHAPES` table (sorted by shape name). `None` means a
/// scalar that is not sensitive.
pub fn lookup(
    table: &'static [(&'static str, AuditShape)],
    shape: &str,
) -> Option<&'static AuditShape> {
    table
        .binary_search_by(|(name, _)| (*name).cmp(shape))
        .ok()
        .and_then(|i| table.get(i))
        .map(|(_, s)| s)
}

/// The `AUDIT_SHAPES` table of the service whose `ServiceSpec::name` is `service` (empty for
/// a service that is not generated).
pub fn audit_shapes(service: &str) -> &'static [(&'static str, AuditShape)] {
    crate::generated::audit_shapes(service)
}
