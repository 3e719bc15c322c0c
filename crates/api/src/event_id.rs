//! The CloudTrail `eventID` of a request, derived from its request id.
//!
//! The audit trail writes it into the request's record, and a service can name the same record
//! (KMS `GetKeyLastUsage` reports `CloudTrailEventId`) without the id travelling through every
//! layer. The mapping flips fixed bits of the request id's random hex digits: it is one-to-one,
//! so distinct requests get distinct event ids, and the result is still a version-4 UUID
//! distinct from the request id itself.

/// Per hex digit of the 36-character UUID text: the bits to flip; `0` on the version digit (14)
/// and the variant digit (19), which must stay as they are, and the hyphens where they are.
const MASK: &[u8; 36] = b"5a3c9e71-9b2d-0f84-0c6a-3e915d7b2f0c";

/// The event id of the request `request_id`. A request id that is not a UUID in text form (only
/// tests build such) is returned unchanged.
pub fn cloudtrail_event_id(request_id: &str) -> String {
    let bytes = request_id.as_bytes();
    if bytes.len() != MASK.len() {
        return request_id.to_owned();
    }
    let mut out = String::with_capacity(36);
    for (&c, &m) in bytes.iter().zip(MASK.iter()) {
        if m == b'-' {
            if c != b'-' {
                return request_id.to_owned();
            }
            out.push('-');
            continue;
        }
        let (Some(d), Some(k)) = (char::from(c).to_digit(16), char::from(m).to_digit(16)) else {
            return request_id.to_owned();
        };
        out.push(char::from_digit(d ^ k, 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_uuids_distinct_from_their_request_ids() {
        let r = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
        let e = cloudtrail_event_id(r);
        assert_eq!(e.len(), 36);
        assert_ne!(e, r);
        assert_eq!(e.as_bytes()[14], b'4', "version stays 4");
        assert_eq!(e.as_bytes()[19], b'8', "variant digit stays");
        assert_eq!(
            [8, 13, 18, 23].map(|i| e.as_bytes()[i]),
            [b'-'; 4],
            "hyphens stay"
        );
        assert_eq!(cloudtrail_event_id(r), e, "deterministic");
        assert_ne!(
            cloudtrail_event_id("1b4e28ba-2fa1-41d2-883f-0016d3cca428"),
            e
        );
        assert_eq!(cloudtrail_event_id("not-a-uuid"), "not-a-uuid");
    }
}
