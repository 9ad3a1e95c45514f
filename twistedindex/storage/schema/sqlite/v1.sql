-- twistedindex schema, version 1, SQLite dialect.
-- Keep in step with postgres/v1.sql: the same tables, columns and meanings.
-- Times are integer microseconds since the Unix epoch (UTC).

CREATE TABLE schema_version (version INTEGER NOT NULL);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    normalized_name TEXT NOT NULL UNIQUE,   -- lower-cased: user names are case-insensitive
    email TEXT,
    password_hash TEXT,                     -- argon2; NULL means password login is disabled
    created INTEGER NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,                     -- display name, as the latest upload spelled it
    normalized_name TEXT NOT NULL UNIQUE,   -- PEP 503 form
    created INTEGER NOT NULL,
    last_serial INTEGER NOT NULL DEFAULT 0  -- serial of its newest journal entry
);

CREATE TABLE roles (
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('Owner', 'Maintainer')),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX roles_user ON roles (user_id);

CREATE TABLE releases (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    version TEXT NOT NULL,                  -- as uploaded
    canonical_version TEXT NOT NULL,        -- packaging.utils.canonicalize_version
    created INTEGER NOT NULL,
    yanked BOOLEAN NOT NULL DEFAULT FALSE,
    yanked_reason TEXT,
    summary TEXT,
    description TEXT,
    description_content_type TEXT,
    requires_python TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',    -- JSON: the other core-metadata fields
    UNIQUE (project_id, version)
);

CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    release_id INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    filename TEXT NOT NULL UNIQUE,
    packagetype TEXT NOT NULL,              -- sdist, bdist_wheel
    python_version TEXT NOT NULL,           -- source, py3, cp311, ...
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    blake2b_256 TEXT NOT NULL,              -- also names the file's place in the store
    md5 TEXT NOT NULL,
    upload_time INTEGER NOT NULL,
    yanked BOOLEAN NOT NULL DEFAULT FALSE,
    yanked_reason TEXT,
    requires_python TEXT,
    metadata_sha256 TEXT,                   -- PEP 658 <file>.metadata, when stored
    comment_text TEXT,
    uploaded_by TEXT
);
CREATE INDEX files_release ON files (release_id);
CREATE INDEX files_blake2b_256 ON files (blake2b_256);

-- Every filename ever stored.  Rows are never deleted, so a filename can
-- never take other bytes, even after its file is removed.
CREATE TABLE file_registry (
    filename TEXT PRIMARY KEY
);

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id INTEGER REFERENCES projects (id) ON DELETE CASCADE,  -- NULL: the user's whole scope
    description TEXT NOT NULL DEFAULT '',
    digest TEXT NOT NULL UNIQUE,            -- sha256 of the whole token; the token itself is never stored
    created INTEGER NOT NULL,
    last_used INTEGER,
    revoked INTEGER                         -- time of revocation, NULL while valid
);
CREATE INDEX tokens_user ON tokens (user_id);

-- The journal: one row per change, in the transaction of the change.
CREATE TABLE journal (
    serial INTEGER PRIMARY KEY,             -- strictly increasing; mirrors keep their upstream's
    name TEXT NOT NULL,                     -- project display name at the time
    normalized_name TEXT NOT NULL,
    version TEXT,
    timestamp INTEGER NOT NULL,
    action TEXT NOT NULL,
    submitted_by TEXT
);
CREATE INDEX journal_project ON journal (normalized_name, serial);
CREATE INDEX journal_timestamp ON journal (timestamp);
