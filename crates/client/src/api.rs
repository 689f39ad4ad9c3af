//! Signed REST calls as the user who approved, with typed calls for `users/me` and `wp/v2/posts`.

use authbroker_oauth1::Signer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::flow::oauth_error;
use crate::{Client, Credentials, Error, Result, Site, nonce, unix_now};

/// Codes with which a site says the token or the consumer behind it is gone: the fix is to connect again.
const TOKEN_GONE: &[&str] = &[
    "json_oauth1_invalid_token",
    "json_oauth1_expired_token",
    "json_consumer_notfound",
];

/// A REST object's `id`: a number on WordPress, an opaque string on some other sites; kept as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Id(pub String);

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(s) => Ok(Self(s)),
            Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "an id must be a number or a string, not {other}"
            ))),
        }
    }
}

/// The user a session acts as (`/wp/v2/users/me`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    pub id: Id,
    pub name: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub link: String,
}

/// A rendered text field (`{"rendered": …}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct Rendered {
    #[serde(default)]
    pub rendered: String,
}

/// A post as the REST API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Post {
    pub id: Id,
    #[serde(default)]
    pub link: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub title: Rendered,
    #[serde(default)]
    pub content: Rendered,
}

/// A post to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewPost {
    pub title: String,
    /// HTML.
    pub content: String,
    /// `draft`, `publish`, `pending` or `private`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
}

/// One page of posts.
#[derive(Debug, Clone)]
pub struct PostList {
    pub posts: Vec<Post>,
    /// `X-WP-Total`, when the site sent it.
    pub total: Option<u64>,
}

/// What `revoke` achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The site revoked the token.
    Revoked,
    /// The site had already forgotten the token.
    AlreadyInvalid,
    /// The site has no revocation endpoint (a WordPress site): only its Connected applications page can.
    NotSupported,
}

/// Signed calls to one site as one user.
#[derive(Debug, Clone)]
pub struct Session {
    client: Client,
    site: Site,
    consumer: Credentials,
    token: Credentials,
}

impl Session {
    pub(crate) fn new(
        client: Client,
        site: Site,
        consumer: Credentials,
        token: Credentials,
    ) -> Self {
        Self {
            client,
            site,
            consumer,
            token,
        }
    }

    pub fn site(&self) -> &Site {
        &self.site
    }

    /// The site consumer (for storing the connection).
    pub fn consumer(&self) -> &Credentials {
        &self.consumer
    }

    /// The access token (for storing the connection).
    pub fn token(&self) -> &Credentials {
        &self.token
    }

    /// A request to `url` with the OAuth 1.0a `Authorization` header; `form` is the form body, if any
    /// (its pairs are signed; JSON bodies are not part of the signature).
    pub fn signed(
        &self,
        method: reqwest::Method,
        url: &str,
        form: &[(String, String)],
    ) -> Result<reqwest::RequestBuilder> {
        let header = Signer::new(
            self.client.method,
            &self.consumer.key,
            &self.consumer.secret,
        )
        .token(&self.token.key, &self.token.secret)
        .sign(method.as_str(), url, form, &nonce(), unix_now())
        .map_err(|err| Error::protocol(url, err.to_string()))?;
        let mut request = self
            .client
            .http
            .request(method, url)
            .header(reqwest::header::AUTHORIZATION, header.to_header_value())
            .timeout(self.client.timeout);
        if !form.is_empty() {
            request = request.form(form);
        }
        Ok(request)
    }

    /// The user the token acts as.
    pub async fn me(&self) -> Result<User> {
        let url = self.site.route_url("/wp/v2/users/me", &[])?;
        let (value, _) = self
            .call(self.signed(reqwest::Method::GET, &url, &[])?, &url)
            .await?;
        decode(&self.site, value)
    }

    /// A page of posts, newest first. `status`: `publish`, `draft`, … or `any` (as the site allows).
    pub async fn posts(&self, page: u32, per_page: u32, status: &str) -> Result<PostList> {
        let page = page.to_string();
        let per_page = per_page.to_string();
        let url = self.site.route_url(
            "/wp/v2/posts",
            &[("page", &page), ("per_page", &per_page), ("status", status)],
        )?;
        let (value, headers) = self
            .call(self.signed(reqwest::Method::GET, &url, &[])?, &url)
            .await?;
        let total = headers
            .get("x-wp-total")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Ok(PostList {
            posts: decode(&self.site, value)?,
            total,
        })
    }

    /// One post.
    pub async fn post(&self, id: &Id) -> Result<Post> {
        let url = self
            .site
            .route_url(&format!("/wp/v2/posts/{id}"), &[("context", "edit")])?;
        let (value, _) = self
            .call(self.signed(reqwest::Method::GET, &url, &[])?, &url)
            .await?;
        decode(&self.site, value)
    }

    /// Creates a post.
    pub async fn create_post(&self, post: &NewPost) -> Result<Post> {
        let url = self.site.route_url("/wp/v2/posts", &[])?;
        let request = self.signed(reqwest::Method::POST, &url, &[])?.json(post);
        let (value, _) = self.call(request, &url).await?;
        decode(&self.site, value)
    }

    /// Revokes the access token on the site (`POST {home}/oauth1/revoke`, an authbroker site's endpoint).
    pub async fn revoke(&self) -> Result<Revocation> {
        let url = format!("{}/oauth1/revoke", self.site.home);
        crate::discovery::check_transport(&url)?;
        let response = self
            .signed(reqwest::Method::POST, &url, &[])?
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|err| Error::unreachable(&url, &err))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        match status {
            200 => Ok(Revocation::Revoked),
            404 | 405 | 501 => Ok(Revocation::NotSupported),
            _ => match oauth_error(&self.site.home, status, &body) {
                Error::OAuth {
                    status: 401,
                    code: Some(code),
                    ..
                } if TOKEN_GONE.contains(&code.as_str()) => Ok(Revocation::AlreadyInvalid),
                err => Err(err),
            },
        }
    }

    /// Sends a signed request; a JSON reply and its headers, or the error in words.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(Value, reqwest::header::HeaderMap)> {
        let response = request
            .send()
            .await
            .map_err(|err| Error::unreachable(url, &err))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|err| Error::unreachable(url, &err))?;
        let json: Option<Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return json.map(|value| (value, headers)).ok_or_else(|| {
                Error::protocol(&self.site.home, format!("{url} did not return JSON"))
            });
        }
        let field = |name: &str| {
            json.as_ref()
                .and_then(|j| j[name].as_str())
                .map(str::to_owned)
        };
        let code = field("code").unwrap_or_else(|| format!("http_{status}"));
        let message = field("message")
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
        if status == 401 && TOKEN_GONE.contains(&code.as_str()) {
            return Err(Error::TokenRejected {
                site: self.site.display().to_owned(),
                message,
            });
        }
        Err(Error::Api {
            site: self.site.display().to_owned(),
            status,
            code,
            message,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(site: &Site, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|err| Error::protocol(&site.home, err.to_string()))
}
