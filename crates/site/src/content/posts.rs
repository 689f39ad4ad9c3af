//! `wp/v2/posts`: list, read, create, update, trash and delete posts, with WordPress's field shapes, status
//! codes and error codes.
//!
//! * `GET /wp-json/wp/v2/posts` — `page`, `per_page` (1–100, default 10), `status` (default `publish`; a
//!   comma-separated list, `any` for every status but `trash`); `X-WP-Total`, `X-WP-TotalPages` and
//!   `Link` `rel="prev"`/`rel="next"`; newest first.
//! * `GET /wp-json/wp/v2/posts/{id}`.
//! * `POST /wp-json/wp/v2/posts` — 201 with a `Location` header.
//! * `POST|PUT|PATCH /wp-json/wp/v2/posts/{id}` — partial update.
//! * `DELETE /wp-json/wp/v2/posts/{id}` — to the trash, or for good with `force=true`.
//!
//! Bodies are JSON or `application/x-www-form-urlencoded` (form bodies are covered by the OAuth signature);
//! query parameters count too, body parameters win, as in WordPress. Anyone may read published posts;
//! drafts, pending, private and trashed posts are visible to their author and to administrators only, and
//! look missing to everyone else. Authors and administrators write; authors only their own posts.
//!
//! Times are stored as unix seconds and sent as UTC ISO 8601 (`date` equals `date_gmt`: the site's timezone
//! is UTC). Ids are integers taken as `MAX(id) + 1` with a retry on a lost race, which is portable between
//! SQLite and PostgreSQL where SERIAL/AUTOINCREMENT are not.

use authbroker_store::sqlx::{self, Row, any::AnyRow};
use authbroker_web::input::drop_nul;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::accounts::{MaybeSession, Role, User};
use crate::error::SiteError;
use crate::state::SiteState;

pub(super) fn routes() -> Router<SiteState> {
    Router::new()
        .route(
            "/wp-json/wp/v2/posts",
            get(list).post(create).fallback(no_route),
        )
        .route(
            "/wp-json/wp/v2/posts/{id}",
            get(read)
                .post(update)
                .put(update)
                .patch(update)
                .delete(delete)
                .fallback(no_route),
        )
}

const DEFAULT_PER_PAGE: i64 = 10;
const MAX_PER_PAGE: i64 = 100;
const MAX_SLUG_LEN: usize = 200;
const INSERT_ATTEMPTS: usize = 5;

// ---------------------------------------------------------------------------------------------------------
// Handlers: parse, call a plain async function, answer.

async fn list(
    State(state): State<SiteState>,
    session: MaybeSession,
    parts: Parts,
    body: Bytes,
) -> Response {
    let result = async {
        let user = super::rest_user(&state, &parts, &body, session).await?;
        let query = ListQuery::parse(parts.uri.query(), user.as_ref())?;
        let page = list_posts(&state, user.as_ref(), &query).await?;
        Ok::<_, SiteError>(list_response(&state, user.as_ref(), &query, page))
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn read(
    State(state): State<SiteState>,
    id: Result<Path<String>, PathRejection>,
    session: MaybeSession,
    parts: Parts,
    body: Bytes,
) -> Response {
    let result = async {
        let id = post_id(id)?;
        let user = super::rest_user(&state, &parts, &body, session).await?;
        let post = read_post(&state, user.as_ref(), id).await?;
        Ok::<_, SiteError>(axum::Json(post_json(&state, user.as_ref(), &post)).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn create(
    State(state): State<SiteState>,
    session: MaybeSession,
    parts: Parts,
    body: Bytes,
) -> Response {
    let result = async {
        let (user, params) = writer(&state, &parts, &body, session).await?;
        let input = PostInput::from_params(&params)?;
        let post = create_post(&state, user.as_ref(), input).await?;
        let location =
            HeaderValue::from_str(&state.url(&format!("/wp-json/wp/v2/posts/{}", post.id)))
                .map_err(|_| SiteError::Internal("post URL cannot be sent in a header".into()))?;
        Ok::<_, SiteError>(
            (
                StatusCode::CREATED,
                [(header::LOCATION, location)],
                axum::Json(post_json(&state, user.as_ref(), &post)),
            )
                .into_response(),
        )
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn update(
    State(state): State<SiteState>,
    id: Result<Path<String>, PathRejection>,
    session: MaybeSession,
    parts: Parts,
    body: Bytes,
) -> Response {
    let result = async {
        let id = post_id(id)?;
        let (user, params) = writer(&state, &parts, &body, session).await?;
        let input = PostInput::from_params(&params)?;
        let post = update_post(&state, user.as_ref(), id, input).await?;
        Ok::<_, SiteError>(axum::Json(post_json(&state, user.as_ref(), &post)).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn delete(
    State(state): State<SiteState>,
    id: Result<Path<String>, PathRejection>,
    session: MaybeSession,
    parts: Parts,
    body: Bytes,
) -> Response {
    let result = async {
        let id = post_id(id)?;
        let (user, params) = writer(&state, &parts, &body, session).await?;
        let force = boolean_param(&params, "force")?.unwrap_or(false);
        let outcome = delete_post(&state, user.as_ref(), id, force).await?;
        let body = match outcome {
            Deleted::Trashed(post) => post_json(&state, user.as_ref(), &post),
            Deleted::Gone(post) => json!({
                "deleted": true,
                "previous": post_json(&state, user.as_ref(), &post),
            }),
        };
        Ok::<_, SiteError>(axum::Json(body).into_response())
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The caller of a write (signed request or cookie session) and the request's parameters.
async fn writer(
    state: &SiteState,
    parts: &Parts,
    body: &Bytes,
    session: MaybeSession,
) -> Result<(Option<User>, Map<String, Value>), SiteError> {
    let user = super::rest_user(state, parts, body, session).await?;
    let params = request_params(parts, body)?;
    Ok((user, params))
}

async fn no_route() -> Response {
    no_route_error().into_response()
}

// ---------------------------------------------------------------------------------------------------------
// Posts and who may do what with them.

/// Where a post is in its life, as WordPress names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Publish,
    Draft,
    Pending,
    Private,
    Trash,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Draft => "draft",
            Self::Pending => "pending",
            Self::Private => "private",
            Self::Trash => "trash",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "publish" => Some(Self::Publish),
            "draft" => Some(Self::Draft),
            "pending" => Some(Self::Pending),
            "private" => Some(Self::Private),
            "trash" => Some(Self::Trash),
            _ => None,
        }
    }

    /// What `status=any` means: everything but the trash.
    const ANY: [Self; 4] = [Self::Publish, Self::Draft, Self::Pending, Self::Private];
}

/// A stored post.
#[derive(Debug, Clone)]
struct Post {
    id: i64,
    author_id: String,
    slug: String,
    status: Status,
    title: String,
    content: String,
    created_at: i64,
    modified_at: i64,
}

const POST_COLUMNS: &str = "id, author_id, slug, status, title, content, created_at, modified_at";

fn post_from_row(row: &AnyRow) -> Result<Post, SiteError> {
    let status: String = row.try_get("status")?;
    Ok(Post {
        id: row.try_get("id")?,
        author_id: row.try_get("author_id")?,
        slug: row.try_get("slug")?,
        status: Status::parse(&status)
            .ok_or_else(|| SiteError::Internal(format!("unknown post status {status:?}")))?,
        title: row.try_get("title")?,
        content: row.try_get("content")?,
        created_at: row.try_get("created_at")?,
        modified_at: row.try_get("modified_at")?,
    })
}

/// Whether `user` may change `post`: administrators any post, authors their own.
fn may_edit(user: &User, post: &Post) -> bool {
    user.role == Role::Administrator || (user.role.can_publish() && user.id == post.author_id)
}

/// Whether `user` (or an anonymous caller) may see `post`.
fn may_read(user: Option<&User>, post: &Post) -> bool {
    post.status == Status::Publish || user.is_some_and(|u| may_edit(u, post))
}

/// Whether responses to `user` carry the `raw` fields (WordPress's `context=edit`).
fn shows_raw(user: Option<&User>) -> bool {
    user.is_some_and(|u| u.role.can_publish())
}

/// A post in the WordPress shape.
fn post_json(state: &SiteState, user: Option<&User>, post: &Post) -> Value {
    let link = state.url(&format!("/?p={}", post.id));
    let self_url = state.url(&format!("/wp-json/wp/v2/posts/{}", post.id));
    let mut title = json!({ "rendered": post.title });
    let mut content = json!({ "rendered": post.content, "protected": false });
    if shows_raw(user) {
        title["raw"] = Value::String(post.title.clone());
        content["raw"] = Value::String(post.content.clone());
    }
    let date = iso8601(post.created_at);
    let modified = iso8601(post.modified_at);
    json!({
        "id": post.id,
        "date": date,
        "date_gmt": date,
        "guid": { "rendered": link },
        "modified": modified,
        "modified_gmt": modified,
        "slug": post.slug,
        "status": post.status.as_str(),
        "type": "post",
        "link": link,
        "title": title,
        "content": content,
        "excerpt": { "rendered": "", "protected": false },
        "author": post.author_id,
        "featured_media": 0,
        "comment_status": "closed",
        "ping_status": "closed",
        "sticky": false,
        "template": "",
        "format": "standard",
        "meta": [],
        "categories": [],
        "tags": [],
        "_links": {
            "self": [{ "href": self_url }],
            "collection": [{ "href": state.url("/wp-json/wp/v2/posts") }],
        },
    })
}

// ---------------------------------------------------------------------------------------------------------
// Errors, in WordPress's words.

fn invalid_param(name: &str) -> SiteError {
    SiteError::rest(
        "rest_invalid_param",
        400,
        format!("Invalid parameter(s): {name}"),
    )
}

fn invalid_id() -> SiteError {
    SiteError::rest("rest_post_invalid_id", 404, "Invalid post ID.")
}

fn no_route_error() -> SiteError {
    SiteError::rest(
        "rest_no_route",
        404,
        "No route was found matching the URL and request method.",
    )
}

/// 401 for anonymous callers, 403 for users without the capability, as WordPress decides.
fn forbidden(user: Option<&User>, code: &'static str, message: &str) -> SiteError {
    let status = if user.is_some() { 403 } else { 401 };
    SiteError::rest(code, status, message)
}

// ---------------------------------------------------------------------------------------------------------
// Request parsing.

/// The `{id}` of a post route. WordPress routes only match digits, so anything else is no route at all;
/// digits too large to be an id name no post.
fn post_id(id: Result<Path<String>, PathRejection>) -> Result<Option<i64>, SiteError> {
    let Ok(Path(id)) = id else {
        return Err(no_route_error());
    };
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(no_route_error());
    }
    Ok(id.parse::<i64>().ok().filter(|id| *id > 0))
}

/// The query of a list request.
#[derive(Debug)]
struct ListQuery {
    page: i64,
    per_page: i64,
    statuses: Vec<Status>,
    /// The `status` parameter as given, echoed into the pagination links.
    status_param: Option<String>,
}

impl ListQuery {
    fn parse(query: Option<&str>, user: Option<&User>) -> Result<Self, SiteError> {
        let pairs = authbroker_oauth1::parse_form(query.unwrap_or_default()).map_err(|_| {
            SiteError::rest("rest_invalid_param", 400, "The query string is malformed.")
        })?;
        let last = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        let integer = |name: &str, default: i64, range: std::ops::RangeInclusive<i64>| {
            last(name).map_or(Ok(default), |v| {
                v.trim()
                    .parse::<i64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| invalid_param(name))
            })
        };
        let page = integer("page", 1, 1..=i64::MAX)?;
        let per_page = integer("per_page", DEFAULT_PER_PAGE, 1..=MAX_PER_PAGE)?;
        let status_param = last("status").map(str::to_owned);
        let mut statuses = Vec::new();
        for name in status_param.as_deref().unwrap_or("publish").split(',') {
            let name = name.trim();
            let named = if name == "any" {
                Status::ANY.to_vec()
            } else {
                vec![Status::parse(name).ok_or_else(|| invalid_param("status"))?]
            };
            for status in named {
                if !statuses.contains(&status) {
                    statuses.push(status);
                }
            }
        }
        // Other statuses than `publish` need the capability to edit posts (WordPress: "Status is forbidden.").
        if statuses.iter().any(|s| *s != Status::Publish) && !shows_raw(user) {
            return Err(invalid_param("status"));
        }
        Ok(Self {
            page,
            per_page,
            statuses,
            status_param,
        })
    }

    /// The URL of another page of the same listing.
    fn page_url(&self, state: &SiteState, page: i64) -> String {
        let mut url = state.url(&format!(
            "/wp-json/wp/v2/posts?page={page}&per_page={}",
            self.per_page
        ));
        if let Some(status) = &self.status_param {
            url.push_str("&status=");
            url.push_str(&authbroker_oauth1::percent_encode(status));
        }
        url
    }
}

/// The parameters of a write request: the query's, overridden by the body's (JSON or form).
fn request_params(parts: &Parts, body: &[u8]) -> Result<Map<String, Value>, SiteError> {
    let mut params = Map::new();
    let query =
        authbroker_oauth1::parse_form(parts.uri.query().unwrap_or_default()).map_err(|_| {
            SiteError::rest("rest_invalid_param", 400, "The query string is malformed.")
        })?;
    for (name, value) in query {
        params.insert(name, Value::String(value));
    }
    for (name, value) in body_params(&parts.headers, body)? {
        params.insert(name, value);
    }
    Ok(params)
}

/// The body's parameters according to its `Content-Type`.
fn body_params(headers: &HeaderMap, body: &[u8]) -> Result<Map<String, Value>, SiteError> {
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| {
            v.to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if media_type == "application/json" || media_type.ends_with("+json") {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        let invalid_json =
            || SiteError::rest("rest_invalid_json", 400, "Invalid JSON body passed.");
        return match serde_json::from_slice::<Value>(body).map_err(|_| invalid_json())? {
            Value::Object(map) => Ok(map),
            Value::Null => Ok(Map::new()),
            _ => Err(SiteError::rest(
                "rest_invalid_json",
                400,
                "The JSON body must be an object.",
            )),
        };
    }
    if media_type == "application/x-www-form-urlencoded" {
        let malformed =
            || SiteError::rest("rest_invalid_param", 400, "The form body is malformed.");
        let text = std::str::from_utf8(body).map_err(|_| malformed())?;
        let mut map = Map::new();
        for (name, value) in authbroker_oauth1::parse_form(text).map_err(|_| malformed())? {
            map.insert(name, Value::String(value));
        }
        return Ok(map);
    }
    if body.is_empty() {
        return Ok(Map::new());
    }
    Err(SiteError::rest(
        "rest_invalid_param",
        400,
        "Unsupported Content-Type: send application/json or application/x-www-form-urlencoded.",
    ))
}

/// A text field as sent: a string, or WordPress's `{"raw": "..."}` object; `null` is as if absent.
fn raw_text_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, SiteError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Object(object)) => match object.get("raw") {
            Some(Value::String(s)) => Ok(Some(s)),
            _ => Err(invalid_param(name)),
        },
        Some(_) => Err(invalid_param(name)),
    }
}

/// A text field without its NUL characters, as WordPress's `wp_kses_no_null` drops them (PostgreSQL text
/// cannot hold them).
fn text_param(params: &Map<String, Value>, name: &str) -> Result<Option<String>, SiteError> {
    Ok(raw_text_param(params, name)?.map(|s| drop_nul(s).into_owned()))
}

/// A boolean as WordPress reads one: JSON booleans, `true`/`false`, `1`/`0`.
fn boolean_param(params: &Map<String, Value>, name: &str) -> Result<Option<bool>, SiteError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(1) => Ok(Some(true)),
            Some(0) => Ok(Some(false)),
            _ => Err(invalid_param(name)),
        },
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" | "" => Ok(Some(false)),
            _ => Err(invalid_param(name)),
        },
        Some(_) => Err(invalid_param(name)),
    }
}

/// The writable fields of a post; absent fields are left as they are (or take their defaults on create).
#[derive(Debug, Default)]
struct PostInput {
    title: Option<String>,
    content: Option<String>,
    status: Option<Status>,
    slug: Option<String>,
}

impl PostInput {
    fn from_params(params: &Map<String, Value>) -> Result<Self, SiteError> {
        // A status is a name, not text: with NUL it names no status.
        let status = match raw_text_param(params, "status")? {
            None => None,
            Some(s) => Some(
                Status::parse(s)
                    .filter(|s| *s != Status::Trash)
                    .ok_or_else(|| invalid_param("status"))?,
            ),
        };
        Ok(Self {
            title: text_param(params, "title")?,
            content: text_param(params, "content")?,
            status,
            slug: text_param(params, "slug")?,
        })
    }
}

// ---------------------------------------------------------------------------------------------------------
// The operations.

/// One page of a listing and the total behind it.
#[derive(Debug)]
struct ListPage {
    posts: Vec<Post>,
    total: i64,
    total_pages: i64,
}

async fn list_posts(
    state: &SiteState,
    user: Option<&User>,
    query: &ListQuery,
) -> Result<ListPage, SiteError> {
    // Non-public statuses: administrators see everyone's, authors their own.
    let only_own = user
        .filter(|u| u.role != Role::Administrator)
        .map(|u| u.id.clone())
        .filter(|_| query.statuses.iter().any(|s| *s != Status::Publish));
    let filter = Filter {
        statuses: query.statuses.clone(),
        only_own,
    };
    let total = count_posts(state, &filter).await?;
    if total == 0 {
        return Ok(ListPage {
            posts: Vec::new(),
            total: 0,
            total_pages: 0,
        });
    }
    let total_pages = (total + query.per_page - 1) / query.per_page;
    if query.page > total_pages {
        return Err(SiteError::rest(
            "rest_post_invalid_page_number",
            400,
            "The page number requested is larger than the number of pages available.",
        ));
    }
    let offset = (query.page - 1) * query.per_page;
    let posts = fetch_posts(state, &filter, query.per_page, offset).await?;
    Ok(ListPage {
        posts,
        total,
        total_pages,
    })
}

fn list_response(
    state: &SiteState,
    user: Option<&User>,
    query: &ListQuery,
    page: ListPage,
) -> Response {
    let body: Vec<Value> = page
        .posts
        .iter()
        .map(|post| post_json(state, user, post))
        .collect();
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert("x-wp-total", HeaderValue::from(page.total));
    headers.insert("x-wp-totalpages", HeaderValue::from(page.total_pages));
    let mut link = |page: i64, rel: &str| {
        let value = format!("<{}>; rel=\"{rel}\"", query.page_url(state, page));
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(header::LINK, value);
        }
    };
    if query.page > 1 && query.page <= page.total_pages {
        link(query.page - 1, "prev");
    }
    if query.page < page.total_pages {
        link(query.page + 1, "next");
    }
    response
}

async fn read_post(
    state: &SiteState,
    user: Option<&User>,
    id: Option<i64>,
) -> Result<Post, SiteError> {
    let Some(id) = id else {
        return Err(invalid_id());
    };
    fetch_post(state, id)
        .await?
        .filter(|post| may_read(user, post))
        .ok_or_else(invalid_id)
}

async fn create_post(
    state: &SiteState,
    user: Option<&User>,
    input: PostInput,
) -> Result<Post, SiteError> {
    let author = user.filter(|u| u.role.can_publish()).ok_or_else(|| {
        forbidden(
            user,
            "rest_cannot_create",
            "Sorry, you are not allowed to create posts as this user.",
        )
    })?;
    let title = input.title.unwrap_or_default();
    let content = input.content.unwrap_or_default();
    if title.is_empty() && content.is_empty() {
        return Err(SiteError::rest(
            "empty_content",
            400,
            "Content, title, and excerpt are empty.",
        ));
    }
    let slug = base_slug(input.slug.as_deref(), &title);
    let now = state.now();
    let mut post = Post {
        id: 0,
        author_id: author.id.clone(),
        slug: String::new(),
        status: input.status.unwrap_or(Status::Draft),
        title,
        content,
        created_at: now,
        modified_at: now,
    };
    insert_post(state, &mut post, &slug).await?;
    Ok(post)
}

async fn update_post(
    state: &SiteState,
    user: Option<&User>,
    id: Option<i64>,
    input: PostInput,
) -> Result<Post, SiteError> {
    let mut post = match id {
        Some(id) => fetch_post(state, id).await?.ok_or_else(invalid_id)?,
        None => return Err(invalid_id()),
    };
    if !user.is_some_and(|u| may_edit(u, &post)) {
        return Err(forbidden(
            user,
            "rest_cannot_edit",
            "Sorry, you are not allowed to edit this post.",
        ));
    }
    if let Some(title) = input.title {
        post.title = title;
    }
    if let Some(content) = input.content {
        post.content = content;
    }
    if let Some(status) = input.status {
        post.status = status;
    }
    if let Some(slug) = input.slug {
        let base = base_slug(Some(&slug), &post.title);
        post.slug = if base.is_empty() {
            post.id.to_string()
        } else {
            unique_slug(state, &base, post.id).await?
        };
    }
    post.modified_at = state.now();
    save_post(state, &post).await?;
    Ok(post)
}

/// What a delete did.
#[derive(Debug)]
enum Deleted {
    /// Moved to the trash; the post as it is now.
    Trashed(Post),
    /// Deleted for good; the post as it was.
    Gone(Post),
}

async fn delete_post(
    state: &SiteState,
    user: Option<&User>,
    id: Option<i64>,
    force: bool,
) -> Result<Deleted, SiteError> {
    let mut post = match id {
        Some(id) => fetch_post(state, id).await?.ok_or_else(invalid_id)?,
        None => return Err(invalid_id()),
    };
    if !user.is_some_and(|u| may_edit(u, &post)) {
        return Err(forbidden(
            user,
            "rest_cannot_delete",
            "Sorry, you are not allowed to delete this post.",
        ));
    }
    if force {
        remove_post(state, post.id).await?;
        return Ok(Deleted::Gone(post));
    }
    if post.status == Status::Trash {
        return Err(SiteError::rest(
            "rest_already_trashed",
            410,
            "The post has already been deleted.",
        ));
    }
    post.status = Status::Trash;
    post.modified_at = state.now();
    save_post(state, &post).await?;
    Ok(Deleted::Trashed(post))
}

// ---------------------------------------------------------------------------------------------------------
// Storage.

/// Which posts a listing covers.
#[derive(Debug)]
struct Filter {
    statuses: Vec<Status>,
    /// When set, posts in other statuses than `publish` only count if this user wrote them.
    only_own: Option<String>,
}

impl Filter {
    /// The `WHERE` clause and its text parameters, numbered from `$1`.
    fn where_clause(&self) -> (String, Vec<String>) {
        let mut binds: Vec<String> = self
            .statuses
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect();
        let placeholders: Vec<String> = (1..=binds.len()).map(|i| format!("${i}")).collect();
        let mut clause = format!("WHERE status IN ({})", placeholders.join(", "));
        if let Some(author) = &self.only_own {
            clause.push_str(&format!(
                " AND (status = ${} OR author_id = ${})",
                binds.len() + 1,
                binds.len() + 2
            ));
            binds.push(Status::Publish.as_str().to_owned());
            binds.push(author.clone());
        }
        (clause, binds)
    }
}

async fn count_posts(state: &SiteState, filter: &Filter) -> Result<i64, SiteError> {
    let (clause, binds) = filter.where_clause();
    let sql = format!("SELECT COUNT(*) FROM posts {clause}");
    let mut query = sqlx::query_scalar::<_, i64>(&sql);
    for bind in binds {
        query = query.bind(bind);
    }
    Ok(query.fetch_one(state.db()).await?)
}

async fn fetch_posts(
    state: &SiteState,
    filter: &Filter,
    limit: i64,
    offset: i64,
) -> Result<Vec<Post>, SiteError> {
    let (clause, binds) = filter.where_clause();
    let n = binds.len();
    let sql = format!(
        "SELECT {POST_COLUMNS} FROM posts {clause} ORDER BY created_at DESC, id DESC LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut query = sqlx::query(&sql);
    for bind in binds {
        query = query.bind(bind);
    }
    query
        .bind(limit)
        .bind(offset)
        .fetch_all(state.db())
        .await?
        .iter()
        .map(post_from_row)
        .collect()
}

async fn fetch_post(state: &SiteState, id: i64) -> Result<Option<Post>, SiteError> {
    sqlx::query(&format!("SELECT {POST_COLUMNS} FROM posts WHERE id = $1"))
        .bind(id)
        .fetch_optional(state.db())
        .await?
        .as_ref()
        .map(post_from_row)
        .transpose()
}

/// Inserts `post` under the next free id (which it sets, with the slug made from `base_slug`, or the id
/// when that is empty). The id is taken by the insert itself (`SELECT MAX(id) + 1` inside the `INSERT`) while
/// this node's other inserts wait, so they never collide; a node sharing the PostgreSQL database may still
/// take the same id concurrently, and the loser retries.
async fn insert_post(state: &SiteState, post: &mut Post, base_slug: &str) -> Result<(), SiteError> {
    // A slug made from the title does not depend on the id (0 is no post's id); one made of the id is
    // computed by the insert.
    let slug = if base_slug.is_empty() {
        None
    } else {
        Some(unique_slug(state, base_slug, 0).await?)
    };
    let _serialized = state.post_ids().lock().await;
    for attempt in 1..=INSERT_ATTEMPTS {
        let inserted = sqlx::query(&format!(
            "INSERT INTO posts ({POST_COLUMNS}) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, COALESCE($2, CAST(COALESCE(MAX(id), 0) + 1 AS TEXT)), $3, $4, $5, $6, $7 FROM posts \
             RETURNING id, slug"
        ))
        .bind(&post.author_id)
        .bind(slug.as_deref())
        .bind(post.status.as_str())
        .bind(&post.title)
        .bind(&post.content)
        .bind(post.created_at)
        .bind(post.modified_at)
        .fetch_one(state.db())
        .await;
        match inserted {
            Ok(row) => {
                post.id = row.try_get("id")?;
                post.slug = row.try_get("slug")?;
                return Ok(());
            }
            Err(err)
                if authbroker_store::is_unique_violation(&err) && attempt < INSERT_ATTEMPTS =>
            {
                tracing::debug!(attempt, "post id taken concurrently, retrying");
            }
            Err(err) => return Err(err.into()),
        }
    }
    Err(SiteError::Internal("no free post id".into()))
}

async fn save_post(state: &SiteState, post: &Post) -> Result<(), SiteError> {
    sqlx::query(
        "UPDATE posts SET slug = $1, status = $2, title = $3, content = $4, modified_at = $5 WHERE id = $6",
    )
    .bind(&post.slug)
    .bind(post.status.as_str())
    .bind(&post.title)
    .bind(&post.content)
    .bind(post.modified_at)
    .bind(post.id)
    .execute(state.db())
    .await?;
    Ok(())
}

async fn remove_post(state: &SiteState, id: i64) -> Result<(), SiteError> {
    sqlx::query("DELETE FROM posts WHERE id = $1")
        .bind(id)
        .execute(state.db())
        .await?;
    Ok(())
}

/// How many candidate slugs one query checks.
const SLUG_BATCH: u64 = 32;

/// `base`, or the first of `base-2`, `base-3`, … that no other post uses (as WordPress's
/// `wp_unique_post_slug`). Candidates are checked in batches by equality, so the lookup uses the
/// `posts_slug` index however many posts share the base.
async fn unique_slug(state: &SiteState, base: &str, id: i64) -> Result<String, SiteError> {
    let mut first = 1u64;
    loop {
        let candidates: Vec<String> = (first..first + SLUG_BATCH)
            .map(|n| {
                if n == 1 {
                    base.to_owned()
                } else {
                    format!("{base}-{n}")
                }
            })
            .collect();
        let placeholders: Vec<String> = (0..candidates.len())
            .map(|i| format!("${}", i + 2))
            .collect();
        let sql = format!(
            "SELECT slug FROM posts WHERE id <> $1 AND slug IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql).bind(id);
        for candidate in &candidates {
            query = query.bind(candidate);
        }
        let taken = query.fetch_all(state.db()).await?;
        if let Some(free) = candidates.into_iter().find(|c| !taken.contains(c)) {
            return Ok(free);
        }
        first += SLUG_BATCH;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Small pure helpers.

/// A URL slug: ASCII letters and digits lower-cased, every run of anything else one `-`, none at either
/// end, at most 200 characters.
fn slugify(text: &str) -> String {
    let mut slug = String::with_capacity(text.len().min(MAX_SLUG_LEN));
    let mut dash = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if dash && !slug.is_empty() {
                slug.push('-');
            }
            dash = false;
            slug.push(c.to_ascii_lowercase());
            if slug.len() >= MAX_SLUG_LEN {
                break;
            }
        } else {
            dash = true;
        }
    }
    slug.truncate(MAX_SLUG_LEN);
    slug.trim_end_matches('-').to_owned()
}

/// The slug a post asks for: the given one, cleaned up, else one made from the title; empty when neither
/// holds a letter or digit (the post then goes by its id).
fn base_slug(given: Option<&str>, title: &str) -> String {
    let slug = given.map(slugify).unwrap_or_default();
    if slug.is_empty() {
        slugify(title)
    } else {
        slug
    }
}

/// Unix seconds as UTC `YYYY-MM-DDTHH:MM:SS` (proleptic Gregorian calendar).
fn iso8601(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_seconds_as_utc_iso8601() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00");
        assert_eq!(iso8601(1_709_210_096), "2024-02-29T12:34:56");
        assert_eq!(iso8601(4_107_542_400), "2100-03-01T00:00:00");
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Hello, World!"), "hello-world");
        assert_eq!(slugify("  --Already-a-slug--  "), "already-a-slug");
        assert_eq!(slugify("Café au lait"), "caf-au-lait");
        assert_eq!(slugify("!!!"), "");
        assert_eq!(base_slug(Some("Given Slug"), "Title"), "given-slug");
        assert_eq!(base_slug(Some("!!!"), "The Title"), "the-title");
        assert_eq!(base_slug(None, "The Title"), "the-title");
        assert_eq!(base_slug(None, "..."), "");
        let long = slugify(&"ab ".repeat(200));
        assert!(long.len() <= MAX_SLUG_LEN && long.starts_with("ab-ab-"));
        assert!(!long.ends_with('-'));
        assert_eq!(slugify(&"a".repeat(500)).len(), MAX_SLUG_LEN);
    }

    #[test]
    fn statuses_round_trip() {
        for status in [
            Status::Publish,
            Status::Draft,
            Status::Pending,
            Status::Private,
            Status::Trash,
        ] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("future"), None);
    }
}
