//! Collecting the signed parameter set (RFC 5849 §3.4.1.3) and normalising it.

use crate::encode::{
    DecodeError, Plus, cmp_encoded, percent_decode, percent_encode_into, percent_encode_twice_into,
};

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

/// [`collect`] taking its inputs by value, so that no parameter is copied.
pub(crate) fn collect_owned(query: Vec<Param>, body: Vec<Param>, header: Vec<Param>) -> Vec<Param> {
    let mut params = Vec::with_capacity(query.len() + body.len() + header.len());
    params.extend(
        query
            .into_iter()
            .chain(body)
            .filter(|(name, _)| !header.iter().any(|(n, _)| n == name)),
    );
    params.extend(header);
    params
}

/// The parameters that are signed, in the order of RFC 5849 §3.4.1.3.2: every parameter but
/// `oauth_signature`, sorted by encoded name then encoded value (compared without encoding them).
pub(crate) fn sorted_for_signing<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(&'a str, &'a str)> {
    let mut signed: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, _)| *name != "oauth_signature")
        .collect();
    // Encoding is injective, so pairs that compare equal are identical and an unstable sort is exact.
    signed.sort_unstable_by(|(n1, v1), (n2, v2)| {
        cmp_encoded(n1, n2).then_with(|| cmp_encoded(v1, v2))
    });
    signed
}

/// The normalised parameter string of RFC 5849 §3.4.1.3.2: every parameter but `oauth_signature`, names
/// and values encoded, sorted by encoded name then encoded value, joined as `n=v&n=v`.
pub fn normalize<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let signed = sorted_for_signing(params);
    let mut out = String::with_capacity(signed.iter().map(|(n, v)| n.len() + v.len() + 2).sum());
    for (i, (name, value)) in signed.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(name, &mut out);
        out.push('=');
        percent_encode_into(value, &mut out);
    }
    out
}

/// `signature_base_string(method, base_uri, &normalize(params))` in one pass: the sorted parameters are
/// encoded twice straight into the base string instead of through the normalised string.
pub(crate) fn signature_base_string_of<'a>(
    method: &str,
    base_uri: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let signed = sorted_for_signing(params);
    let params_len: usize = signed.iter().map(|(n, v)| n.len() + v.len() + 6).sum();
    let mut out =
        String::with_capacity(method.len() + base_uri.len() * 3 / 2 + params_len * 3 / 2 + 2);
    percent_encode_into(&method.to_ascii_uppercase(), &mut out);
    out.push('&');
    percent_encode_into(base_uri, &mut out);
    out.push('&');
    for (i, (name, value)) in signed.iter().enumerate() {
        if i > 0 {
            out.push_str("%26");
        }
        percent_encode_twice_into(name, &mut out);
        out.push_str("%3D");
        percent_encode_twice_into(value, &mut out);
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
    fn owned_collection_equals_collection() {
        let query = pairs(&[("oauth_nonce", "q"), ("a", "1"), ("oauth_token", "q")]);
        let body = pairs(&[("oauth_nonce", "b"), ("a", "2"), ("z", "")]);
        let header = pairs(&[("oauth_nonce", "h"), ("oauth_signature", "s")]);
        assert_eq!(
            collect_owned(query.clone(), body.clone(), header.clone()),
            collect(&query, &body, &header)
        );
        assert_eq!(collect_owned(vec![], vec![], vec![]), vec![]);
    }

    #[test]
    fn one_pass_base_string_equals_the_two_step_one() {
        let params = pairs(&[
            ("b", "2"),
            ("a", "z"),
            ("a", "y"),
            ("a", "y"),
            ("oauth_signature", "sig"),
            ("c d", "~+"),
            ("c", "%"),
            ("c-", "é"),
            ("", "="),
            ("&", "&"),
            ("~", "☃ x"),
        ]);
        let refs = || params.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        for method in ["get", "POST", "p=st", "Ünï"] {
            assert_eq!(
                signature_base_string_of(method, "https://a.example/p%20q", refs()),
                crate::base::signature_base_string(
                    method,
                    "https://a.example/p%20q",
                    &normalize(refs())
                ),
            );
        }
        assert_eq!(
            signature_base_string_of("GET", "http://h/", std::iter::empty()),
            "GET&http%3A%2F%2Fh%2F&"
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
