//! restJson1 URI templates from the model's `requestUri`, e.g. `/detector/{detectorId}/filter`
//! or `/tags/{resourceArn+}?x=y`.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Label(String),
    /// `{name+}`: matches the rest of the path, slashes included.
    Greedy(String),
}

#[derive(Debug)]
pub(crate) struct UriTemplate {
    segments: Vec<Segment>,
    /// Query parameters the template requires (`?uploads` or `?type=x`).
    required_query: Vec<(String, Option<String>)>,
}

impl UriTemplate {
    pub(crate) fn parse(template: &str) -> Self {
        let (path, query) = template.split_once('?').unwrap_or((template, ""));
        let segments = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(label) => match label.strip_suffix('+') {
                        Some(greedy) => Segment::Greedy(greedy.to_owned()),
                        None => Segment::Label(label.to_owned()),
                    },
                    None => Segment::Literal(s.to_owned()),
                },
            )
            .collect();
        let required_query = query
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                None => (kv.to_owned(), None),
            })
            .collect();
        UriTemplate {
            segments,
            required_query,
        }
    }

    /// Orders templates so that literal segments win over labels when both match.
    pub(crate) fn specificity(&self) -> (usize, usize, usize) {
        let literals = self
            .segments
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        let greedy_free = usize::from(
            !self
                .segments
                .iter()
                .any(|s| matches!(s, Segment::Greedy(_))),
        );
        (
            self.required_query.len() + literals,
            greedy_free,
            self.segments.len(),
        )
    }

    /// Matches a raw request path and query; returns the decoded labels.
    pub(crate) fn matches(&self, path: &str, query: &str) -> Option<BTreeMap<String, String>> {
        let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut labels = BTreeMap::new();
        let mut i = 0;
        for (n, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(lit) => {
                    if parts.get(i).map(|p| decode(p)) != Some(lit.clone()) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Label(name) => {
                    let part = parts.get(i)?;
                    labels.insert(name.clone(), decode(part));
                    i += 1;
                }
                Segment::Greedy(name) => {
                    // A greedy label takes everything up to the literal segments after it.
                    let rest_len = self.segments.len() - n - 1;
                    let end = parts.len().checked_sub(rest_len)?;
                    if end <= i {
                        return None;
                    }
                    let joined = parts.get(i..end)?.join("/");
                    labels.insert(name.clone(), decode(&joined));
                    i = end;
                }
            }
        }
        if i != parts.len() {
            return None;
        }
        for (key, value) in &self.required_query {
            let present = form_urlencoded::parse(query.as_bytes())
                .any(|(k, v)| k == key.as_str() && value.as_ref().is_none_or(|want| v == *want));
            if !present {
                return None;
            }
        }
        Some(labels)
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_literals() {
        let t = UriTemplate::parse("/detector/{detectorId}/filter/{filterName}");
        let m = t.matches("/detector/abc/filter/my%20f", "").unwrap();
        assert_eq!(m["detectorId"], "abc");
        assert_eq!(m["filterName"], "my f");
        assert!(t.matches("/detector/abc/filter", "").is_none());
        assert!(t.matches("/detector/abc/other/x", "").is_none());
    }

    #[test]
    fn greedy_label_takes_slashes() {
        let t = UriTemplate::parse("/tags/{resourceArn+}");
        let m = t.matches("/tags/arn%3Aaws%3Ax/y/z", "").unwrap();
        assert_eq!(m["resourceArn"], "arn:aws:x/y/z");
        assert!(t.matches("/tags", "").is_none());
    }

    #[test]
    fn required_query() {
        let t = UriTemplate::parse("/things?list-type=2");
        assert!(t.matches("/things", "list-type=2").is_some());
        assert!(t.matches("/things", "list-type=1").is_none());
        assert!(t.matches("/things", "").is_none());
    }

    #[test]
    fn root() {
        let t = UriTemplate::parse("/");
        assert!(t.matches("/", "").is_some());
        assert!(t.matches("/x", "").is_none());
    }
}
