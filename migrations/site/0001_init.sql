-- The site's schema. Portable between SQLite and PostgreSQL: TEXT ids we generate, INTEGER unix seconds,
-- no AUTOINCREMENT/SERIAL, no backend-specific types. Statements are separated by a line holding only ';'.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
)
;
CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)
;
-- An OAuth 1.0a consumer ("application"). Brokered consumers name their broker and the app's client_id at
-- that broker; (broker_id, broker_client_id) identifies one app per broker, never across brokers.
CREATE TABLE consumers (
    id               TEXT PRIMARY KEY,
    consumer_key     TEXT NOT NULL UNIQUE,
    consumer_secret  TEXT NOT NULL,
    name             TEXT NOT NULL,
    description      TEXT NOT NULL,
    callback         TEXT NOT NULL,
    broker_id        TEXT,
    broker_client_id TEXT,
    details_url      TEXT,
    status           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    UNIQUE (broker_id, broker_client_id)
)
;
CREATE TABLE request_tokens (
    token_key    TEXT PRIMARY KEY,
    token_secret TEXT NOT NULL,
    consumer_id  TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
    callback     TEXT,
    verifier     TEXT,
    user_id      TEXT REFERENCES users (id) ON DELETE CASCADE,
    expires_at   BIGINT NOT NULL
)
;
CREATE TABLE access_tokens (
    token_key    TEXT PRIMARY KEY,
    token_secret TEXT NOT NULL,
    consumer_id  TEXT NOT NULL REFERENCES consumers (id) ON DELETE CASCADE,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
)
;
CREATE INDEX access_tokens_user ON access_tokens (user_id, consumer_id)
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
;
CREATE TABLE posts (
    id          BIGINT PRIMARY KEY,
    author_id   TEXT NOT NULL REFERENCES users (id),
    slug        TEXT NOT NULL,
    status      TEXT NOT NULL,
    title       TEXT NOT NULL,
    content     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    modified_at BIGINT NOT NULL
)
;
CREATE INDEX posts_status ON posts (status, created_at)
;
CREATE TABLE known_brokers (
    broker_id        TEXT PRIMARY KEY,
    verification_url TEXT NOT NULL,
    added_at         BIGINT NOT NULL
)
;
-- Allow/deny of one app (client_id) of one broker. A broker with any 'allow' rule admits only allowed apps.
CREATE TABLE client_rules (
    broker_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    rule      TEXT NOT NULL,
    PRIMARY KEY (broker_id, client_id)
)
