-- Schema version 3 (PostgreSQL): mirroring and PEP 381.
-- Keep in step with sqlite/upgrade-to-v3.sql.

-- Facts about the index as a whole, by name.  Mirrors keep here:
--   mirror_of      the upstream's URL (its presence makes the index read-only);
--   mirror_mode    how the upstream is read: "serials" or "pages";
--   mirror_serial  the upstream serial up to which every change is applied;
--   mirror_synced  when the last round that applied everything ended (us).
CREATE TABLE index_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- A mirror's bookkeeping per project, kept after the project is removed so
-- that a removal is not fetched again.
CREATE TABLE mirror_projects (
    normalized_name TEXT PRIMARY KEY,
    serial BIGINT NOT NULL,                -- the upstream serial (or page version) applied
    fingerprint TEXT,                       -- upstreams without serials: a digest of the page applied
    failures INTEGER NOT NULL DEFAULT 0,    -- rounds in a row that failed to apply it
    last_error TEXT
);

-- PEP 381 signatures copied from the upstream, for /serversig/<project> on
-- a mirror; each is valid for the page at its serial only.
CREATE TABLE serversigs (
    normalized_name TEXT PRIMARY KEY,
    serial BIGINT NOT NULL,
    signature BYTEA NOT NULL
);

-- Downloads per day, file and user agent, for PEP 381's
-- /local-stats/days/<day>.bz2.
CREATE TABLE downloads (
    day TEXT NOT NULL,                      -- YYYY-MM-DD, UTC
    project TEXT NOT NULL,
    filename TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (day, filename, user_agent)
);
