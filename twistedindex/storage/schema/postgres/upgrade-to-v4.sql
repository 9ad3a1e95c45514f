-- Schema version 4 (PostgreSQL): web sessions.
-- Keep in step with sqlite/upgrade-to-v4.sql.

-- A browser's login.  The cookie carries a random session id; only its
-- SHA-256 is kept here, so a copy of the database logs nobody in.  Kept in
-- the database, not in a daemon's memory, so that every daemon sharing the
-- database knows every session.
CREATE TABLE sessions (
    digest TEXT PRIMARY KEY,                -- sha256 (hex) of the session id
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,               -- what the session's forms must carry
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires);
