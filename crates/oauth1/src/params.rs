//! Collecting the signed parameter set (RFC 5849 §3.4.1.3) and normalising it.

use crate::encode::{DecodeError, Plus, percent_decode, percent_encode};

/// One request parameter, decoded.
pub type Param = (String, String);

/// Parses an `application/x-www-form-urlencoded` string (a query string or a form body) into decoded
/// name/value pairs, keeping repeated names and their order. Empty segments (`a=1&&b=2`) are skipped and a
/// segment without `=` is a name with an empty value, as browsers and PHP read them.
pub fn parse_form(input: &str) -> Result<Vec<Param>, DecodeError> {
    input
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            Ok((
                percent_decode(name, Plus::Space)?,
                percent_decode(value, Plus::Space)?,
            ))
        })
        .collect()
}

/// The full parameter set of a request: query ∪ form body ∪ header `oauth_*`.
///
/// A parameter named in the header wins: its occurrences in the query and the body are dropped, so that a
/// client that repeats an `oauth_*` value outside the header is not counted twice.
pub fn collect(query: &[Param], body: &[Param], header: &[Param]) -> Vec<Param> {
    let shadowed = |name: &str| header.iter().any(|(n, _)| n == name);
    query
        .iter()
        .chain(body)
        .filter(|(name, _)| !shadowed(name))
        .chain(header)
        .cloned()
        .collect()
}

/// The normalised parameter string of RFC 5849 §3.4.1.3.2: every parameter but `oauth_signature`, names
/// and values encoded, sorted by encoded name then encoded value, joined as `n=v&n=v`.
pub fn normalize<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut encoded: Vec<(String, String)> = params
        .into_iter()
        .filter(|(name, _)| *name != "oauth_signature")
        .map(|(name, value)| (percent_encode(name), percent_encode(value)))
        .collect();
    encoded.sort_unstable();
    let mut out = String::with_capacity(encoded.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (i, (name, value)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<Param> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn form_parsing_keeps_repeats_and_reads_plus_as_space() {
        assert_eq!(
            parse_form("a=1&&a=2&b&c=x+y%2Bz&=e").unwrap(),
            pairs(&[("a", "1"), ("a", "2"), ("b", ""), ("c", "x y+z"), ("", "e")])
        );
        assert_eq!(parse_form("").unwrap(), vec![]);
        assert!(parse_form("a=%").is_err());
    }

    #[test]
    fn header_parameters_shadow_query_and_body() {
        let query = pairs(&[("oauth_nonce", "q"), ("a", "1")]);
        let body = pairs(&[("oauth_nonce", "b"), ("a", "2")]);
        let header = pairs(&[("oauth_nonce", "h")]);
        assert_eq!(
            collect(&query, &body, &header),
            pairs(&[("a", "1"), ("a", "2"), ("oauth_nonce", "h")])
        );
    }

    #[test]
    fn normalisation_sorts_encoded_pairs_and_drops_the_signature() {
        let params = pairs(&[
            ("b", "2"),
            ("a", "z"),
            ("a", "y"),
            ("oauth_signature", "sig"),
            ("c d", "~+"),
        ]);
        assert_eq!(
            normalize(params.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
            "a=y&a=z&b=2&c%20d=~%2B"
        );
    }
}
