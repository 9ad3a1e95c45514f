# -*- test-case-name: tests.storage.test_contract -*-
"""
Search queries, and how each backend runs them on its full-text index.

A L{Query} is a list of L{Term}s joined by "and" or "or".  A term names a
field, or none for the text fields together.  Text fields (name, summary,
keywords, description) are looked up in the full-text index: SQLite's FTS5,
PostgreSQL's tsvector with a GIN index.  Each word of a term matches as a
prefix, so "twist" finds "twisted".  Other fields (author, license, ...) are
matched as substrings.  Results are ranked: an exact name first, then by the
full-text rank (names weigh most, then summaries, keywords, descriptions).
"""

from __future__ import annotations

import re
from typing import Any

from attrs import frozen

TEXT_FIELDS = ("name", "summary", "keywords", "description")
OTHER_FIELDS = (
    "version",
    "author",
    "author_email",
    "maintainer",
    "maintainer_email",
    "home_page",
    "license",
    "platform",
    "download_url",
)
FIELDS = TEXT_FIELDS + OTHER_FIELDS

# PostgreSQL weights of the text fields (see the search_documents trigger).
_WEIGHTS = {"name": "A", "summary": "B", "keywords": "C", "description": "D"}

_WORD = re.compile(r"\w+", re.UNICODE)


@frozen
class Term:
    """
    Text to find, in one field or (C{field=None}) in the text fields.
    """

    field: str | None
    text: str

    @property
    def words(self) -> list[str]:
        return _WORD.findall(self.text.lower())


@frozen
class Query:
    terms: tuple[Term, ...]
    operator: str = "and"

    @classmethod
    def of_text(cls, text: str) -> Query:
        """
        A search box's query: every word, in the text fields.
        """
        return cls(tuple(Term(None, word) for word in _WORD.findall(text)), "and")

    def exact_name(self) -> str:
        """
        The normalized name the query would be if it named one project.
        """
        words = [w for term in self.terms if term.field in (None, "name") for w in term.words]
        return "-".join(words)


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def compile_query(query: Query, dialect: str) -> tuple[str, list[Any], str | None, list[Any]]:
    """
    C{(where, where_params, rank, rank_params)} for a query on the
    C{search_documents} table aliased C{d}.  A lower rank is better; a query
    without text terms has no rank (C{None}).
    """
    conditions: list[str] = []
    params: list[Any] = []
    every_word: list[str] = []
    for term in query.terms:
        if term.field is not None and term.field not in FIELDS:
            raise ValueError(f"unknown field {term.field!r}")
        if term.field in OTHER_FIELDS:
            conditions.append(f"LOWER(d.{term.field}) LIKE %s ESCAPE '\\'")
            params.append(_like(term.text))
            continue
        words = term.words
        if not words:
            conditions.append("1 = 0")
            continue
        every_word += words
        if dialect == "sqlite":
            column = f"{term.field} : " if term.field else ""
            match = column + "(" + " AND ".join(f'"{w}"*' for w in words) + ")"
            conditions.append("d.project_id IN (SELECT rowid FROM search_text WHERE search_text MATCH %s)")
            params.append(match)
        else:
            weight = _WEIGHTS.get(term.field or "", "")
            conditions.append("d.document @@ to_tsquery('simple', %s)")
            params.append(" & ".join(f"{w}:*{weight}" for w in words))
    joiner = " AND " if query.operator == "and" else " OR "
    where = joiner.join(f"({c})" for c in conditions) if conditions else "1 = 0"
    if not every_word:
        return where, params, None, []
    if dialect == "sqlite":
        rank = (
            "COALESCE((SELECT bm25(search_text, 10.0, 4.0, 2.0, 1.0) FROM search_text "
            "WHERE search_text MATCH %s AND rowid = d.project_id), 0)"
        )
        return where, params, rank, [" OR ".join(f'"{w}"*' for w in every_word)]
    rank = "-ts_rank_cd(d.document, to_tsquery('simple', %s))"
    return where, params, rank, [" | ".join(f"{w}:*" for w in every_word)]
