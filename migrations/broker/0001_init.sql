-- The broker's schema. Portable between SQLite and PostgreSQL (see migrations/site). It never holds site
-- credentials: connections are logged by site URL, time and result only.

CREATE TABLE developers (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
)
;
CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
)
;
-- API tokens for scripts and the CLI; only their SHA-256 is stored.
CREATE TABLE api_tokens (
    token_hash   TEXT PRIMARY KEY,
    developer_id TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    label        TEXT NOT NULL,
    created_at   BIGINT NOT NULL
)
;
-- A registered app. client_id/client_secret are its OAuth 1.0a consumer credentials at this broker (R1).
CREATE TABLE apps (
    id            TEXT PRIMARY KEY,
    developer_id  TEXT NOT NULL REFERENCES developers (id) ON DELETE CASCADE,
    client_id     TEXT NOT NULL UNIQUE,
    client_secret TEXT NOT NULL,
    name          TEXT NOT NULL,
    description   TEXT NOT NULL,
    callback_url  TEXT NOT NULL,
    details_url   TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL
)
;
CREATE TABLE connections (
    id         TEXT PRIMARY KEY,
    app_id     TEXT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    site_url   TEXT NOT NULL,
    result     TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
;
CREATE INDEX connections_app ON connections (app_id, created_at)
;
CREATE TABLE oauth1_nonces (
    consumer_key TEXT NOT NULL,
    token        TEXT NOT NULL,
    ts           BIGINT NOT NULL,
    nonce        TEXT NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (consumer_key, token, ts, nonce)
)
;
CREATE INDEX oauth1_nonces_expiry ON oauth1_nonces (expires_at)
