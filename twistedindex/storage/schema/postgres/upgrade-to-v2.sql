-- Schema version 2 (PostgreSQL): the search index and release classifiers.
-- Keep in step with sqlite/upgrade-to-v2.sql.  The data migration that fills
-- both for existing releases is in migrate.py (DATA_MIGRATIONS).

-- Each release's classifiers, one row each, for browse().
CREATE TABLE release_classifiers (
    release_id BIGINT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    classifier TEXT NOT NULL,
    PRIMARY KEY (release_id, classifier)
);
CREATE INDEX release_classifiers_classifier ON release_classifiers (classifier);

-- One search document per project: its newest release (see
-- Transaction.refresh_search_document).
CREATE TABLE search_documents (
    project_id BIGINT PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
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
    download_url TEXT NOT NULL DEFAULT '',
    -- The full-text vector, weighted: name A, summary B, keywords C,
    -- description D (so a query can be limited to one of them).  The 'simple'
    -- configuration does no stemming, like SQLite's tokenizer.
    document TSVECTOR NOT NULL DEFAULT ''::tsvector
);
CREATE INDEX search_documents_document ON search_documents USING GIN (document);

CREATE FUNCTION search_documents_vector() RETURNS trigger AS $$
BEGIN
    NEW.document :=
        setweight(to_tsvector('simple', translate(NEW.name, '._-', '   ')), 'A') ||
        setweight(to_tsvector('simple', NEW.summary), 'B') ||
        setweight(to_tsvector('simple', NEW.keywords), 'C') ||
        setweight(to_tsvector('simple', NEW.description), 'D');
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER search_documents_vector BEFORE INSERT OR UPDATE ON search_documents
    FOR EACH ROW EXECUTE FUNCTION search_documents_vector();
