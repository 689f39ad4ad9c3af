//! `/wp-admin/brokers`: the brokers this site trusts and the allow/deny rules for their apps
//! (administrators only). The brokered connection endpoint only ever sends verification requests to URLs
//! from this table, so adding a broker is what makes its apps able to connect.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{
    Audience, BROKERS, DoneQuery, Nav, PageResult, Viewer, finish, format_time, required, store,
};
use crate::accounts::MaybeSession;
use crate::error::SiteError;
use crate::pages::render;
use crate::state::SiteState;

/// Broker IDs are stored like client ids (PROTOCOL.md R4 limits those to 255).
const MAX_BROKER_ID_LEN: usize = 255;
const MAX_URL_LEN: usize = 2048;

#[derive(Template)]
#[template(path = "manage/brokers.html")]
pub(super) struct BrokersPage<'a> {
    pub(super) site_name: &'a str,
    pub(super) nav: Nav<'a>,
    pub(super) notice: Option<&'a str>,
    pub(super) brokers: Vec<BrokerRow>,
    pub(super) rules: Vec<RuleGroup>,
}

/// One known broker, ready to show.
#[derive(Debug, Clone)]
pub(super) struct BrokerRow {
    pub(super) broker_id: String,
    pub(super) verification_url: String,
    pub(super) added: String,
}

/// The rules of one broker ID (which may no longer be a known broker: rules outlive their broker).
#[derive(Debug, Clone)]
pub(super) struct RuleGroup {
    pub(super) broker_id: String,
    pub(super) known: bool,
    /// Whether the broker has an `allow` rule, which makes it admit allowed apps only.
    pub(super) allow_list: bool,
    pub(super) rules: Vec<store::ClientRule>,
}

/// Groups rules (sorted by broker) per broker.
fn group_rules(rules: Vec<store::ClientRule>, brokers: &[BrokerRow]) -> Vec<RuleGroup> {
    let mut groups: Vec<RuleGroup> = Vec::new();
    for rule in rules {
        match groups.last_mut() {
            Some(group) if group.broker_id == rule.broker_id => group.rules.push(rule),
            _ => groups.push(RuleGroup {
                known: brokers.iter().any(|b| b.broker_id == rule.broker_id),
                broker_id: rule.broker_id.clone(),
                allow_list: false,
                rules: vec![rule],
            }),
        }
    }
    for group in &mut groups {
        group.allow_list = group.rules.iter().any(|r| r.rule == "allow");
    }
    groups
}

pub(super) async fn page(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    done: DoneQuery,
) -> Response {
    let result: PageResult = async {
        let viewer = Viewer::of(&state, session, &headers, Audience::Administrators, BROKERS)?;
        let brokers: Vec<BrokerRow> = store::known_brokers(&state)
            .await?
            .into_iter()
            .map(|b| BrokerRow {
                broker_id: b.broker_id,
                verification_url: b.verification_url,
                added: format_time(b.added_at),
            })
            .collect();
        let rules = group_rules(store::client_rules(&state).await?, &brokers);
        let page = BrokersPage {
            site_name: &state.config().name,
            nav: viewer.nav("brokers"),
            notice: super::notice(&done),
            brokers,
            rules,
        };
        Ok(render(&page, StatusCode::OK, viewer.csrf_cookie.clone())?)
    }
    .await;
    finish(&state, result)
}

#[derive(Debug, Deserialize)]
pub(super) struct BrokerForm {
    #[serde(rename = "_csrf")]
    csrf: Option<String>,
    broker_id: Option<String>,
    verification_url: Option<String>,
    client_id: Option<String>,
}

impl super::CsrfForm for BrokerForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

fn invalid(message: String) -> SiteError {
    SiteError::rest("rest_invalid_param", 400, message)
}

/// A broker ID: an absolute `https` URL with a host, ending in `/`, without userinfo, query or fragment, and
/// written the way URL parsers write it — brokers are compared as exact strings, so `HTTPS://Apps.Example/`
/// would never match the `https://apps.example/` a broker sends.
fn check_broker_id(id: &str) -> Result<(), SiteError> {
    let refuse = || {
        invalid(format!(
            "The broker ID {id:?} is not an absolute https URL ending in / (like https://apps.wp-api.org/)."
        ))
    };
    if id.len() > MAX_BROKER_ID_LEN {
        return Err(invalid(format!(
            "A broker ID is at most {MAX_BROKER_ID_LEN} characters."
        )));
    }
    let url = url::Url::parse(id).map_err(|_| refuse())?;
    if url.scheme() != "https"
        || !url.has_host()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.query().is_some()
        || url.fragment().is_some()
        || !id.ends_with('/')
    {
        return Err(refuse());
    }
    if url.as_str() != id {
        return Err(invalid(format!(
            "Write the broker ID as {}: brokers are compared as exact strings.",
            url.as_str()
        )));
    }
    Ok(())
}

/// A verification URL: an absolute `https` URL with a host, without userinfo or fragment.
fn check_verification_url(url: &str) -> Result<(), SiteError> {
    let refuse = || {
        invalid(format!(
            "The verification URL {url:?} is not an absolute https URL (like https://apps.wp-api.org/broker/confirm/)."
        ))
    };
    if url.len() > MAX_URL_LEN {
        return Err(invalid(format!(
            "A verification URL is at most {MAX_URL_LEN} characters."
        )));
    }
    let parsed = url::Url::parse(url).map_err(|_| refuse())?;
    if parsed.scheme() != "https"
        || !parsed.has_host()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.fragment().is_some()
    {
        return Err(refuse());
    }
    Ok(())
}

fn check(
    state: &SiteState,
    session: MaybeSession,
    headers: &HeaderMap,
    submitted: Result<Form<BrokerForm>, FormRejection>,
) -> Result<BrokerForm, super::ManageError> {
    let (submitted, _) = Viewer::of_form(
        state,
        session,
        headers,
        submitted,
        Audience::Administrators,
        BROKERS,
    )?;
    Ok(submitted)
}

/// Adds a known broker.
pub(super) async fn add(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    submitted: Result<Form<BrokerForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let submitted = check(&state, session, &headers, submitted)?;
        let broker_id = required(&submitted.broker_id, "The broker ID")?;
        let verification_url = required(&submitted.verification_url, "The verification URL")?;
        check_broker_id(broker_id)?;
        check_verification_url(verification_url)?;
        if !store::add_broker(&state, broker_id, verification_url).await? {
            return Err(SiteError::rest(
                "rest_invalid_param",
                409,
                "This broker is already known. Remove it first to change its verification URL.",
            )
            .into());
        }
        tracing::info!(%broker_id, %verification_url, "broker added");
        Ok(super::done(BROKERS, "broker-added"))
    }
    .await;
    finish(&state, result)
}

/// Forgets a known broker: its apps can no longer connect through it (their existing credentials stay).
pub(super) async fn remove(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    submitted: Result<Form<BrokerForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let submitted = check(&state, session, &headers, submitted)?;
        let broker_id = required(&submitted.broker_id, "The broker ID")?;
        let removed = store::remove_broker(&state, broker_id).await?;
        tracing::info!(%broker_id, removed, "broker removed");
        Ok(super::done(BROKERS, "broker-removed"))
    }
    .await;
    finish(&state, result)
}

/// Removes the allow/deny rule of one app of one broker.
pub(super) async fn remove_rule(
    State(state): State<SiteState>,
    session: MaybeSession,
    headers: HeaderMap,
    submitted: Result<Form<BrokerForm>, FormRejection>,
) -> Response {
    let result: PageResult = async {
        let submitted = check(&state, session, &headers, submitted)?;
        let broker_id = required(&submitted.broker_id, "The broker ID")?;
        let client_id = required(&submitted.client_id, "The client ID")?;
        let removed = store::remove_client_rule(&state, broker_id, client_id).await?;
        tracing::info!(%broker_id, %client_id, removed, "client rule removed");
        Ok(super::done(BROKERS, "rule-removed"))
    }
    .await;
    finish(&state, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_ids_are_canonical_https_urls_ending_in_a_slash() {
        assert!(check_broker_id("https://apps.wp-api.org/").is_ok());
        assert!(check_broker_id("https://broker.example:8443/apps/").is_ok());
        assert!(check_broker_id("https://apps.wp-api.org").is_err());
        assert!(check_broker_id("https://apps.wp-api.org/x").is_err());
        assert!(check_broker_id("http://apps.wp-api.org/").is_err());
        assert!(check_broker_id("https://user@apps.wp-api.org/").is_err());
        assert!(check_broker_id("https://apps.wp-api.org/?a=/").is_err());
        assert!(check_broker_id("/relative/").is_err());
        assert!(check_broker_id("https://Apps.example/").is_err());
        assert!(check_broker_id(&format!("https://a.example/{}/", "a".repeat(300))).is_err());
    }

    #[test]
    fn verification_urls_are_https_urls() {
        assert!(check_verification_url("https://apps.wp-api.org/broker/confirm/").is_ok());
        assert!(check_verification_url("https://apps.wp-api.org/confirm?x=1").is_ok());
        assert!(check_verification_url("http://apps.wp-api.org/broker/confirm/").is_err());
        assert!(check_verification_url("https://u:p@apps.wp-api.org/").is_err());
        assert!(check_verification_url("apps.wp-api.org/broker/confirm/").is_err());
        assert!(check_verification_url("javascript:alert(1)").is_err());
    }

    #[test]
    fn rules_are_grouped_per_broker() {
        let rule = |b: &str, c: &str, r: &str| store::ClientRule {
            broker_id: b.into(),
            client_id: c.into(),
            rule: r.into(),
        };
        let brokers = [BrokerRow {
            broker_id: "https://a.example/".into(),
            verification_url: "https://a.example/confirm".into(),
            added: String::new(),
        }];
        let groups = group_rules(
            vec![
                rule("https://a.example/", "x", "allow"),
                rule("https://a.example/", "y", "deny"),
                rule("https://gone.example/", "z", "deny"),
            ],
            &brokers,
        );
        assert_eq!(groups.len(), 2);
        assert!(groups[0].known && groups[0].allow_list);
        assert_eq!(groups[0].rules.len(), 2);
        assert!(!groups[1].known && !groups[1].allow_list);
    }
}
