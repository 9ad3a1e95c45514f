-- Schema version 2 (SQLite): the search index and release classifiers.
-- Keep in step with postgres/upgrade-to-v2.sql.  The data migration that
-- fills both for existing releases is in migrate.py (DATA_MIGRATIONS).

-- Each release's classifiers, one row each, for browse().
CREATE TABLE release_classifiers (
    release_id INTEGER NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    classifier TEXT NOT NULL,
    PRIMARY KEY (release_id, classifier)
);
CREATE INDEX release_classifiers_classifier ON release_classifiers (classifier);

-- One search document per project: its newest release (see
-- Transaction.refresh_search_document).
CREATE TABLE search_documents (
    project_id INTEGER PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
    normalized_name TEXT NOT NULL,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    ordering INTEGER NOT NULL,              -- the release's place in version order (_pypi_ordering)
    summary TEXT NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    author TEXT NOT NULL DEFAULT '',
    author_email TEXT NOT NULL DEFAULT '',
    maintainer TEXT NOT NULL DEFAULT '',
    maintainer_email TEXT NOT NULL DEFAULT '',
    home_page TEXT NOT NULL DEFAULT '',
    license TEXT NOT NULL DEFAULT '',
    platform TEXT NOT NULL DEFAULT '',
    download_url TEXT NOT NULL DEFAULT ''
);

-- The full-text index over the documents' text fields, kept in step by
-- triggers.  Names are indexed with their separators as spaces, so that
-- "zope" finds zope.interface.
CREATE VIRTUAL TABLE search_text USING fts5(
    name, summary, keywords, description,
    tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER search_documents_insert AFTER INSERT ON search_documents BEGIN
    INSERT INTO search_text (rowid, name, summary, keywords, description)
    VALUES (new.project_id, replace(replace(replace(new.name, '.', ' '), '_', ' '), '-', ' '),
            new.summary, new.keywords, new.description);
END;
CREATE TRIGGER search_documents_delete AFTER DELETE ON search_documents BEGIN
    DELETE FROM search_text WHERE rowid = old.project_id;
END;
