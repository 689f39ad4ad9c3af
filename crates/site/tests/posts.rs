//! The WordPress posts API (`wp/v2/posts`) over a real socket, on both backends: OAuth1-signed writes with
//! JSON and form bodies, listing and pagination, permissions, bad input, and the `?rest_route=` form.
#![allow(clippy::unwrap_used)]

mod common;

use authbroker_oauth1::{SignatureMethod, Signer};
use authbroker_site::{Consumer, Role, create_user};
use common::*;
use serde_json::{Value, json};

/// A request body.
enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
    Raw(&'static str, Vec<u8>),
}

/// What came back.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    #[track_caller]
    fn expect(self, status: u16, code: &str) -> Self {
        assert_eq!(self.status, status, "{:?}", self.body);
        assert_eq!(self.body["code"], code, "{:?}", self.body);
        assert_eq!(self.body["data"]["status"], status, "{:?}", self.body);
        self
    }
}

/// A caller of the API: anonymous, or an app holding an access token for one user.
struct Caller {
    base: String,
    credentials: Option<(Consumer, String, String)>,
}

impl Caller {
    fn anonymous(site: &TestSite) -> Self {
        Self {
            base: site.base.clone(),
            credentials: None,
        }
    }

    /// An app the user `login` approved through the whole three-legged flow.
    async fn user(site: &TestSite, consumer: &Consumer, login: &str, password: &str) -> Self {
        let user = ScriptedUser::new(login, password);
        let access = site
            .three_legged_as(consumer, SignatureMethod::HmacSha1, &user)
            .await;
        Self {
            base: site.base.clone(),
            credentials: Some((consumer.clone(), access.token, access.secret)),
        }
    }

    /// Sends `method` to `path` (relative to the site) with `body`, signed when the caller has a token.
    async fn send(&self, method: &str, path: &str, body: Body) -> Reply {
        let url = format!("{}{}", self.base, path);
        let client = reqwest::Client::new();
        let mut request = client.request(method.parse().unwrap(), &url);
        let mut signed_form = Vec::new();
        match body {
            Body::None => {}
            Body::Json(value) => {
                request = request.json(&value);
            }
            Body::Form(pairs) => {
                signed_form = pairs
                    .iter()
                    .map(|(n, v)| ((*n).to_owned(), v.clone()))
                    .collect();
                request = request.form(&pairs);
            }
            Body::Raw(content_type, bytes) => {
                request = request.header("Content-Type", content_type).body(bytes);
            }
        }
        if let Some((consumer, token, secret)) = &self.credentials {
            let signer = Signer::new(SignatureMethod::HmacSha1, &consumer.key, &consumer.secret)
                .token(token, secret);
            let header = sign_now(&signer, method, &url, &signed_form);
            request = request.header("Authorization", header.to_header_value());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, Body::None).await
    }

    /// Creates a post from JSON and checks the 201.
    async fn create(&self, fields: Value) -> Value {
        let reply = self
            .send("POST", "/wp-json/wp/v2/posts", Body::Json(fields))
            .await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body
    }
}

/// A site, an app, and callers acting as the administrator, an author, another author and a subscriber.
struct World {
    site: TestSite,
    admin: Caller,
    author: Caller,
    other_author: Caller,
    subscriber: Caller,
    anonymous: Caller,
    author_id: String,
}

impl World {
    async fn new(backend: Backend) -> Self {
        let site = TestSite::start(backend).await;
        let consumer = site.consumer("http://127.0.0.1:9/callback").await;
        let author = create_user(
            &site.state,
            "alice",
            "Alice Author",
            "alice@site.example",
            "alice password",
            Role::Author,
        )
        .await
        .unwrap();
        for (login, role) in [("bob", Role::Author), ("sam", Role::Subscriber)] {
            create_user(
                &site.state,
                login,
                login,
                &format!("{login}@site.example"),
                &format!("{login} password"),
                role,
            )
            .await
            .unwrap();
        }
        let admin = Caller::user(&site, &consumer, &site.admin_login, &site.admin_password).await;
        let author_caller = Caller::user(&site, &consumer, "alice", "alice password").await;
        let other_author = Caller::user(&site, &consumer, "bob", "bob password").await;
        let subscriber = Caller::user(&site, &consumer, "sam", "sam password").await;
        let anonymous = Caller::anonymous(&site);
        Self {
            site,
            admin,
            author: author_caller,
            other_author,
            subscriber,
            anonymous,
            author_id: author.id,
        }
    }
}

fn is_iso8601_utc(value: &Value) -> bool {
    let s = value.as_str().unwrap_or_default();
    s.len() == 19
        && s.char_indices().all(|(i, c)| match i {
            4 | 7 => c == '-',
            10 => c == 'T',
            13 | 16 => c == ':',
            _ => c.is_ascii_digit(),
        })
}

#[tokio::test]
async fn create_read_update_and_delete() {
    for backend in BACKENDS {
        let w = World::new(backend).await;
        let site = &w.site;

        // Create with a JSON body: 201, Location, WordPress's shape, raw fields for the author.
        let reply = w
            .author
            .send(
                "POST",
                "/wp-json/wp/v2/posts",
                Body::Json(json!({
                    "title": "Hello, World!",
                    "content": "<p>First <em>post</em></p>",
                    "status": "publish",
                })),
            )
            .await;
        assert_eq!(reply.status, 201, "{backend:?} {:?}", reply.body);
        let post = reply.body.clone();
        let id = post["id"].as_i64().unwrap();
        assert!(id > 0);
        assert_eq!(
            reply.header("location"),
            site.url(&format!("/wp-json/wp/v2/posts/{id}"))
        );
        assert_eq!(post["type"], "post");
        assert_eq!(post["status"], "publish");
        assert_eq!(post["slug"], "hello-world");
        assert_eq!(post["link"], site.url(&format!("/?p={id}")));
        assert_eq!(post["title"]["rendered"], "Hello, World!");
        assert_eq!(post["title"]["raw"], "Hello, World!");
        assert_eq!(post["content"]["rendered"], "<p>First <em>post</em></p>");
        assert_eq!(post["content"]["raw"], "<p>First <em>post</em></p>");
        assert_eq!(post["content"]["protected"], false);
        assert_eq!(post["excerpt"], json!({"rendered": "", "protected": false}));
        assert_eq!(post["author"], Value::String(w.author_id.clone()));
        assert_eq!(
            post["_links"]["self"][0]["href"],
            site.url(&format!("/wp-json/wp/v2/posts/{id}"))
        );
        for field in ["date", "date_gmt", "modified", "modified_gmt"] {
            assert!(is_iso8601_utc(&post[field]), "{field}: {}", post[field]);
        }
        assert_eq!(post["date"], post["date_gmt"]);

        // Create with a signed form body; the default status is draft; the same title gets a fresh slug.
        let reply = w
            .author
            .send(
                "POST",
                "/wp-json/wp/v2/posts",
                Body::Form(vec![
                    ("title", "Hello, World!".into()),
                    ("content", "<p>Form & body + signature</p>".into()),
                ]),
            )
            .await;
        assert_eq!(reply.status, 201, "{backend:?} {:?}", reply.body);
        let draft = reply.body;
        let draft_id = draft["id"].as_i64().unwrap();
        assert_eq!(draft_id, id + 1);
        assert_eq!(draft["status"], "draft");
        assert_eq!(draft["slug"], "hello-world-2");
        assert_eq!(draft["content"]["raw"], "<p>Form & body + signature</p>");

        // An explicit slug is cleaned up.
        let named = w
            .author
            .create(json!({"title": "x", "slug": "My Custom Slug!", "status": "pending"}))
            .await;
        assert_eq!(named["slug"], "my-custom-slug");
        assert_eq!(named["status"], "pending");

        // Read: anyone sees the published post, without raw fields; the draft looks missing to others.
        let read = w.anonymous.get(&format!("/wp-json/wp/v2/posts/{id}")).await;
        assert_eq!(read.status, 200);
        assert_eq!(read.body["title"]["rendered"], "Hello, World!");
        assert!(read.body["title"].get("raw").is_none());
        assert!(read.body["content"].get("raw").is_none());
        w.anonymous
            .get(&format!("/wp-json/wp/v2/posts/{draft_id}"))
            .await
            .expect(404, "rest_post_invalid_id");
        w.subscriber
            .get(&format!("/wp-json/wp/v2/posts/{draft_id}"))
            .await
            .expect(404, "rest_post_invalid_id");
        w.other_author
            .get(&format!("/wp-json/wp/v2/posts/{draft_id}"))
            .await
            .expect(404, "rest_post_invalid_id");
        let own = w
            .author
            .get(&format!("/wp-json/wp/v2/posts/{draft_id}"))
            .await;
        assert_eq!(own.status, 200);
        assert_eq!(own.body["title"]["raw"], "Hello, World!");
        assert_eq!(
            w.admin
                .get(&format!("/wp-json/wp/v2/posts/{draft_id}"))
                .await
                .status,
            200
        );

        // Update with POST (JSON), PUT (form) and PATCH: partial, fields absent stay.
        let path = format!("/wp-json/wp/v2/posts/{draft_id}");
        let updated = w
            .author
            .send(
                "POST",
                &path,
                Body::Json(json!({"title": {"raw": "Renamed"}, "status": "publish"})),
            )
            .await;
        assert_eq!(updated.status, 200, "{:?}", updated.body);
        assert_eq!(updated.body["title"]["raw"], "Renamed");
        assert_eq!(updated.body["status"], "publish");
        assert_eq!(
            updated.body["content"]["raw"],
            "<p>Form & body + signature</p>"
        );
        assert_eq!(updated.body["slug"], "hello-world-2");
        let put = w
            .author
            .send(
                "PUT",
                &path,
                Body::Form(vec![
                    ("content", "<p>Put</p>".into()),
                    ("slug", "put-slug".into()),
                ]),
            )
            .await;
        assert_eq!(put.status, 200, "{:?}", put.body);
        assert_eq!(put.body["content"]["raw"], "<p>Put</p>");
        assert_eq!(put.body["title"]["raw"], "Renamed");
        assert_eq!(put.body["slug"], "put-slug");
        let patch = w
            .admin
            .send("PATCH", &path, Body::Json(json!({"status": "private"})))
            .await;
        assert_eq!(patch.status, 200, "{:?}", patch.body);
        assert_eq!(patch.body["status"], "private");
        assert_eq!(patch.body["author"], Value::String(w.author_id.clone()));
        let read = w.author.get(&path).await;
        assert_eq!(read.body["status"], "private");
        assert_eq!(read.body["content"]["rendered"], "<p>Put</p>");

        // Delete without force: to the trash, and only once.
        let trashed = w.author.send("DELETE", &path, Body::None).await;
        assert_eq!(trashed.status, 200, "{:?}", trashed.body);
        assert_eq!(trashed.body["status"], "trash");
        assert_eq!(trashed.body["id"], draft_id);
        w.author
            .send("DELETE", &path, Body::None)
            .await
            .expect(410, "rest_already_trashed");
        assert_eq!(w.author.get(&path).await.body["status"], "trash");
        w.anonymous
            .get(&path)
            .await
            .expect(404, "rest_post_invalid_id");

        // Delete with force (in the query, then in a body): gone for good.
        let gone = w
            .author
            .send("DELETE", &format!("{path}?force=true"), Body::None)
            .await;
        assert_eq!(gone.status, 200, "{:?}", gone.body);
        assert_eq!(gone.body["deleted"], true);
        assert_eq!(gone.body["previous"]["id"], draft_id);
        assert_eq!(gone.body["previous"]["status"], "trash");
        w.author
            .get(&path)
            .await
            .expect(404, "rest_post_invalid_id");
        let gone = w
            .admin
            .send(
                "DELETE",
                &format!("/wp-json/wp/v2/posts/{id}"),
                Body::Json(json!({"force": true})),
            )
            .await;
        assert_eq!(gone.status, 200, "{:?}", gone.body);
        assert_eq!(gone.body["deleted"], true);
        assert_eq!(gone.body["previous"]["title"]["raw"], "Hello, World!");
        w.author
            .send(
                "DELETE",
                &format!("/wp-json/wp/v2/posts/{id}?force=true"),
                Body::None,
            )
            .await
            .expect(404, "rest_post_invalid_id");

        w.site.cleanup().await;
    }
}

#[tokio::test]
async fn list_paginates_newest_first_and_filters_status() {
    for backend in BACKENDS {
        let w = World::new(backend).await;

        // Nothing yet: an empty list with zero totals.
        let empty = w.anonymous.get("/wp-json/wp/v2/posts").await;
        assert_eq!(empty.status, 200);
        assert_eq!(empty.body, json!([]));
        assert_eq!(empty.header("x-wp-total"), "0");
        assert_eq!(empty.header("x-wp-totalpages"), "0");

        let mut published = Vec::new();
        for n in 1..=5 {
            let post = w
                .author
                .create(json!({"title": format!("Post {n}"), "status": "publish"}))
                .await;
            published.push(post["id"].as_i64().unwrap());
        }
        let alice_draft = w.author.create(json!({"title": "Alice draft"})).await;
        let bob_draft = w.other_author.create(json!({"title": "Bob draft"})).await;

        // Default: published only, newest first, ten per page.
        let all = w.anonymous.get("/wp-json/wp/v2/posts").await;
        assert_eq!(all.status, 200);
        assert_eq!(all.header("x-wp-total"), "5");
        assert_eq!(all.header("x-wp-totalpages"), "1");
        let ids: Vec<i64> = all
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        let mut newest_first = published.clone();
        newest_first.reverse();
        assert_eq!(ids, newest_first);
        assert!(all.body[0]["title"].get("raw").is_none());

        // Pages of two.
        let page1 = w.anonymous.get("/wp-json/wp/v2/posts?per_page=2").await;
        assert_eq!(page1.header("x-wp-total"), "5");
        assert_eq!(page1.header("x-wp-totalpages"), "3");
        assert_eq!(page1.body.as_array().unwrap().len(), 2);
        assert_eq!(page1.body[0]["id"], newest_first[0]);
        let links: Vec<&str> = page1
            .headers
            .get_all("link")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(
            links.iter().any(|l| l.ends_with("rel=\"next\"")
                && l.contains("/wp-json/wp/v2/posts?page=2&per_page=2")),
            "{links:?}"
        );
        let page3 = w
            .anonymous
            .get("/wp-json/wp/v2/posts?per_page=2&page=3")
            .await;
        assert_eq!(page3.status, 200);
        assert_eq!(page3.body.as_array().unwrap().len(), 1);
        assert_eq!(page3.body[0]["id"], newest_first[4]);
        w.anonymous
            .get("/wp-json/wp/v2/posts?per_page=2&page=4")
            .await
            .expect(400, "rest_post_invalid_page_number");

        // Bad paging parameters.
        for query in [
            "per_page=0",
            "per_page=101",
            "per_page=-1",
            "per_page=abc",
            "per_page=99999999999999999999999",
            "page=0",
            "page=x",
        ] {
            w.anonymous
                .get(&format!("/wp-json/wp/v2/posts?{query}"))
                .await
                .expect(400, "rest_invalid_param");
        }
        let hundred = w.anonymous.get("/wp-json/wp/v2/posts?per_page=100").await;
        assert_eq!(hundred.status, 200);

        // Other statuses: not for anonymous callers or subscribers; authors see their own, admins all.
        w.anonymous
            .get("/wp-json/wp/v2/posts?status=draft")
            .await
            .expect(400, "rest_invalid_param");
        w.subscriber
            .get("/wp-json/wp/v2/posts?status=draft")
            .await
            .expect(400, "rest_invalid_param");
        w.anonymous
            .get("/wp-json/wp/v2/posts?status=bogus")
            .await
            .expect(400, "rest_invalid_param");
        let alice = w.author.get("/wp-json/wp/v2/posts?status=draft").await;
        assert_eq!(alice.status, 200);
        assert_eq!(alice.header("x-wp-total"), "1");
        assert_eq!(alice.body[0]["id"], alice_draft["id"]);
        assert_eq!(alice.body[0]["title"]["raw"], "Alice draft");
        let admin = w.admin.get("/wp-json/wp/v2/posts?status=draft").await;
        assert_eq!(admin.header("x-wp-total"), "2");
        assert_eq!(admin.body[0]["id"], bob_draft["id"]);
        let any = w.author.get("/wp-json/wp/v2/posts?status=any").await;
        assert_eq!(any.header("x-wp-total"), "6");
        let both = w
            .admin
            .get("/wp-json/wp/v2/posts?status=publish,draft&per_page=3")
            .await;
        assert_eq!(both.header("x-wp-total"), "7");
        assert_eq!(both.header("x-wp-totalpages"), "3");

        // Trashed posts leave the default listing.
        let trashed = w
            .author
            .send(
                "DELETE",
                &format!("/wp-json/wp/v2/posts/{}", published[0]),
                Body::None,
            )
            .await;
        assert_eq!(trashed.status, 200);
        assert_eq!(
            w.anonymous
                .get("/wp-json/wp/v2/posts")
                .await
                .header("x-wp-total"),
            "4"
        );
        let trash = w.admin.get("/wp-json/wp/v2/posts?status=trash").await;
        assert_eq!(trash.header("x-wp-total"), "1");

        w.site.cleanup().await;
    }
}

#[tokio::test]
async fn permissions_follow_wordpress() {
    for backend in BACKENDS {
        let w = World::new(backend).await;
        let fields = json!({"title": "T", "content": "C", "status": "publish"});

        // Create: 401 when not logged in, 403 when logged in without the capability.
        w.anonymous
            .send("POST", "/wp-json/wp/v2/posts", Body::Json(fields.clone()))
            .await
            .expect(401, "rest_cannot_create");
        w.subscriber
            .send("POST", "/wp-json/wp/v2/posts", Body::Json(fields.clone()))
            .await
            .expect(403, "rest_cannot_create");
        w.subscriber
            .send(
                "POST",
                "/wp-json/wp/v2/posts",
                Body::Form(vec![("title", "T".into())]),
            )
            .await
            .expect(403, "rest_cannot_create");

        let post = w.author.create(fields.clone()).await;
        let path = format!("/wp-json/wp/v2/posts/{}", post["id"]);
        let change = || Body::Json(json!({"title": "Changed"}));

        // Update: only the author or an administrator.
        w.anonymous
            .send("POST", &path, change())
            .await
            .expect(401, "rest_cannot_edit");
        w.subscriber
            .send("PUT", &path, change())
            .await
            .expect(403, "rest_cannot_edit");
        w.other_author
            .send("PATCH", &path, change())
            .await
            .expect(403, "rest_cannot_edit");
        assert_eq!(w.anonymous.get(&path).await.body["title"]["rendered"], "T");
        let by_admin = w.admin.send("POST", &path, change()).await;
        assert_eq!(by_admin.status, 200);
        assert_eq!(by_admin.body["title"]["raw"], "Changed");

        // Delete: likewise.
        w.anonymous
            .send("DELETE", &path, Body::None)
            .await
            .expect(401, "rest_cannot_delete");
        w.subscriber
            .send("DELETE", &format!("{path}?force=true"), Body::None)
            .await
            .expect(403, "rest_cannot_delete");
        w.other_author
            .send("DELETE", &path, Body::None)
            .await
            .expect(403, "rest_cannot_delete");
        assert_eq!(w.anonymous.get(&path).await.status, 200);
        let gone = w
            .admin
            .send("DELETE", &format!("{path}?force=true"), Body::None)
            .await;
        assert_eq!(gone.status, 200);
        assert_eq!(gone.body["deleted"], true);

        // A bad signature is an OAuth error, never an anonymous success.
        let consumer = w.site.consumer("oob").await;
        let url = w.site.url("/wp-json/wp/v2/posts");
        let signer = Signer::new(SignatureMethod::HmacSha1, &consumer.key, "wrong secret")
            .token("nonexistenttoken", "nope");
        let response = signed("POST", &url, &signer)
            .json(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);

        w.site.cleanup().await;
    }
}

#[tokio::test]
async fn bad_input_is_answered_with_wordpress_errors() {
    for backend in BACKENDS {
        let w = World::new(backend).await;
        let posts = "/wp-json/wp/v2/posts";

        // Bodies.
        w.author
            .send(
                "POST",
                posts,
                Body::Raw("application/json", b"{\"title\": ".to_vec()),
            )
            .await
            .expect(400, "rest_invalid_json");
        w.author
            .send(
                "POST",
                posts,
                Body::Raw("application/json", b"{\"title\": \"\xff\"}".to_vec()),
            )
            .await
            .expect(400, "rest_invalid_json");
        w.author
            .send("POST", posts, Body::Json(json!(["not", "an", "object"])))
            .await
            .expect(400, "rest_invalid_json");
        w.anonymous
            .send(
                "POST",
                posts,
                Body::Raw("application/json", b"nonsense".to_vec()),
            )
            .await
            .expect(400, "rest_invalid_json");
        w.author
            .send(
                "POST",
                posts,
                Body::Raw("text/plain", b"title=plain".to_vec()),
            )
            .await
            .expect(400, "rest_invalid_param");
        w.author
            .send(
                "POST",
                posts,
                Body::Raw("multipart/form-data; boundary=x", b"--x--".to_vec()),
            )
            .await
            .expect(400, "rest_invalid_param");
        let non_utf8 = w
            .anonymous
            .send(
                "POST",
                posts,
                Body::Raw(
                    "application/x-www-form-urlencoded",
                    b"title=\xff\xfe".to_vec(),
                ),
            )
            .await;
        assert_eq!(non_utf8.status, 400, "{:?}", non_utf8.body);
        let bad_percent = w
            .anonymous
            .send(
                "POST",
                posts,
                Body::Raw("application/x-www-form-urlencoded", b"title=%ff".to_vec()),
            )
            .await;
        assert_eq!(bad_percent.status, 400, "{:?}", bad_percent.body);

        // Fields.
        w.author
            .send(
                "POST",
                posts,
                Body::Json(json!({"title": "T", "status": "future"})),
            )
            .await
            .expect(400, "rest_invalid_param");
        w.author
            .send(
                "POST",
                posts,
                Body::Json(json!({"title": "T", "status": "trash"})),
            )
            .await
            .expect(400, "rest_invalid_param");
        w.author
            .send("POST", posts, Body::Json(json!({"title": 42})))
            .await
            .expect(400, "rest_invalid_param");
        w.author
            .send(
                "POST",
                posts,
                Body::Json(json!({"title": "", "content": ""})),
            )
            .await
            .expect(400, "empty_content");
        let untitled = w
            .author
            .create(json!({"content": "<p>Body only</p>"}))
            .await;
        assert_eq!(untitled["slug"], untitled["id"].to_string());

        // Ids.
        let post = w
            .author
            .create(json!({"title": "Exists", "status": "publish"}))
            .await;
        let path = format!("{posts}/{}", post["id"]);
        w.author
            .send("DELETE", &format!("{path}?force=maybe"), Body::None)
            .await
            .expect(400, "rest_invalid_param");
        w.author
            .send("PATCH", &path, Body::Raw("application/json", b"{".to_vec()))
            .await
            .expect(400, "rest_invalid_json");
        for missing in ["999", "0", "99999999999999999999999999"] {
            let missing = format!("{posts}/{missing}");
            w.anonymous
                .get(&missing)
                .await
                .expect(404, "rest_post_invalid_id");
            w.author
                .send("POST", &missing, Body::Json(json!({"title": "x"})))
                .await
                .expect(404, "rest_post_invalid_id");
            w.author
                .send("DELETE", &missing, Body::None)
                .await
                .expect(404, "rest_post_invalid_id");
        }
        for not_an_id in ["abc", "-1", "1.5", "%FF"] {
            w.anonymous
                .get(&format!("{posts}/{not_an_id}"))
                .await
                .expect(404, "rest_no_route");
        }
        w.anonymous
            .send("DELETE", posts, Body::None)
            .await
            .expect(404, "rest_no_route");
        assert_eq!(w.anonymous.get(&path).await.status, 200);

        w.site.cleanup().await;
    }
}

#[tokio::test]
async fn every_route_works_through_rest_route() {
    for backend in BACKENDS {
        let w = World::new(backend).await;
        let via = |route: &str| format!("/index.php?rest_route={route}");

        // A signed POST with a form body, addressed by query parameter.
        let created = w
            .author
            .send(
                "POST",
                &via("/wp/v2/posts"),
                Body::Form(vec![
                    ("title", "Via rest_route".into()),
                    ("content", "<p>ok</p>".into()),
                    ("status", "publish".into()),
                ]),
            )
            .await;
        assert_eq!(created.status, 201, "{backend:?} {:?}", created.body);
        let id = created.body["id"].as_i64().unwrap();
        assert_eq!(created.body["slug"], "via-rest-route");
        assert_eq!(
            created.header("location"),
            w.site.url(&format!("/wp-json/wp/v2/posts/{id}"))
        );
        // The same with a JSON body and the route percent-encoded.
        let second = w
            .author
            .send(
                "POST",
                "/index.php?rest_route=%2Fwp%2Fv2%2Fposts",
                Body::Json(json!({"title": "Second", "status": "publish"})),
            )
            .await;
        assert_eq!(second.status, 201, "{:?}", second.body);

        // List with paging parameters next to rest_route.
        let list = w
            .anonymous
            .get(&format!("{}&per_page=1&page=2", via("/wp/v2/posts")))
            .await;
        assert_eq!(list.status, 200, "{:?}", list.body);
        assert_eq!(list.header("x-wp-total"), "2");
        assert_eq!(list.header("x-wp-totalpages"), "2");
        assert_eq!(list.body[0]["id"], id);

        // Read, update, delete.
        let one = via(&format!("/wp/v2/posts/{id}"));
        let read = w.anonymous.get(&one).await;
        assert_eq!(read.status, 200);
        assert_eq!(read.body["title"]["rendered"], "Via rest_route");
        let updated = w
            .author
            .send("PUT", &one, Body::Form(vec![("title", "Renamed".into())]))
            .await;
        assert_eq!(updated.status, 200, "{:?}", updated.body);
        assert_eq!(updated.body["title"]["raw"], "Renamed");
        w.anonymous
            .send("DELETE", &one, Body::None)
            .await
            .expect(401, "rest_cannot_delete");
        let gone = w
            .author
            .send("DELETE", &format!("{one}&force=true"), Body::None)
            .await;
        assert_eq!(gone.status, 200, "{:?}", gone.body);
        assert_eq!(gone.body["deleted"], true);
        w.anonymous
            .get(&one)
            .await
            .expect(404, "rest_post_invalid_id");
        w.anonymous
            .get(&via("/wp/v2/posts/nope"))
            .await
            .expect(404, "rest_no_route");

        // WordPress also answers `/?rest_route=` (without index.php): signed, with a JSON body.
        let bare = w
            .author
            .send(
                "POST",
                "/?rest_route=/wp/v2/posts",
                Body::Json(json!({"title": "Bare", "status": "publish"})),
            )
            .await;
        assert_eq!(bare.status, 201, "{:?}", bare.body);
        let me = w.author.get("/?rest_route=%2Fwp%2Fv2%2Fusers%2Fme").await;
        assert_eq!(me.status, 200, "{:?}", me.body);
        // Without rest_route, `/` is the home page: GET only.
        assert_eq!(w.anonymous.get("/").await.status, 200);
        assert_eq!(w.anonymous.send("POST", "/", Body::None).await.status, 405);

        w.site.cleanup().await;
    }
}

/// Concurrent creates (what a load test does) each get their own id; none fails on a lost id race.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_distinct_ids() {
    for backend in BACKENDS {
        let w = std::sync::Arc::new(World::new(backend).await);
        let tasks: Vec<_> = (0..24)
            .map(|i| {
                let w = w.clone();
                tokio::spawn(async move {
                    // Half titled (slug from the title), half untitled (slug from the id).
                    let fields = if i % 2 == 0 {
                        json!({"title": format!("Concurrent {i}")})
                    } else {
                        json!({"content": format!("Body {i}")})
                    };
                    w.author.create(fields).await
                })
            })
            .collect();
        let mut ids = std::collections::BTreeSet::new();
        for task in tasks {
            let post = task.await.unwrap();
            if post["title"]["raw"] == "" {
                assert_eq!(post["slug"], post["id"].to_string());
            }
            assert!(ids.insert(post["id"].as_i64().unwrap()), "{post}");
        }
        assert_eq!(ids.len(), 24);
        let w = std::sync::Arc::into_inner(w).unwrap();
        w.site.cleanup().await;
    }
}

/// Many posts with one title: slugs count up past one lookup batch, and a freed slug is used again.
#[tokio::test]
async fn slugs_stay_unique_past_a_lookup_batch() {
    for backend in BACKENDS {
        let w = World::new(backend).await;
        let mut ids = Vec::new();
        for n in 1..=35 {
            let reply = w
                .author
                .send(
                    "POST",
                    "/wp-json/wp/v2/posts",
                    Body::Json(json!({"title": "Same title"})),
                )
                .await;
            assert_eq!(reply.status, 201, "{backend:?} {:?}", reply.body);
            let expected = if n == 1 {
                "same-title".to_owned()
            } else {
                format!("same-title-{n}")
            };
            assert_eq!(reply.body["slug"], expected.as_str(), "{backend:?}");
            ids.push(reply.body["id"].as_i64().unwrap());
        }
        // Free `same-title-7`; the next post takes it.
        let gone = w
            .author
            .send(
                "DELETE",
                &format!("/wp-json/wp/v2/posts/{}?force=true", ids[6]),
                Body::None,
            )
            .await;
        assert_eq!(gone.status, 200, "{:?}", gone.body);
        let reply = w
            .author
            .send(
                "POST",
                "/wp-json/wp/v2/posts",
                Body::Json(json!({"title": "Same title"})),
            )
            .await;
        assert_eq!(reply.body["slug"], "same-title-7", "{backend:?}");
        w.site.cleanup().await;
    }
}

/// NUL characters (which PostgreSQL text cannot hold) are dropped from posts, as WordPress's
/// `wp_kses_no_null` drops them: the post is created on both backends instead of failing with a 500.
#[tokio::test]
async fn nul_characters_are_dropped_not_fatal() {
    for backend in BACKENDS {
        let w = World::new(backend).await;
        let reply = w
            .author
            .send(
                "POST",
                "/wp-json/wp/v2/posts",
                Body::Json(json!({"title": "Nul\u{0}ed", "content": "<p>a\u{0}b</p>", "status": "publish"})),
            )
            .await;
        assert_eq!(reply.status, 201, "{backend:?} {:?}", reply.body);
        assert_eq!(reply.body["title"]["raw"], "Nuled");
        assert_eq!(reply.body["content"]["raw"], "<p>ab</p>");
        // An authorize URL naming a token with NUL is an invalid token, not a server error.
        let page = w
            .anonymous
            .get("/oauth1/authorize?oauth_token=ab%00cd")
            .await;
        assert!(page.status < 500, "{backend:?} {}", page.status);
        w.site.cleanup().await;
    }
}
