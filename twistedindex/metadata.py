# -*- test-case-name: tests.test_metadata -*-
"""
Core metadata: read from a distribution's METADATA or PKG-INFO, or from the
legacy API's form fields, and checked the way PyPI checks it.

C{packaging.metadata} does the parsing and the standard checks; PyPI's own
rules (supported versions, no local versions, e-mail and URL checks, known
classifiers, description that renders) are layered on top.  The first error,
in PyPI's order of importance, becomes the client's message.
"""

from __future__ import annotations

import email.utils
import functools
import re
import typing
from typing import Any
from urllib.parse import urlsplit

import email_validator
import readme_renderer.markdown
import readme_renderer.rst
import readme_renderer.txt
from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.requirements import InvalidRequirement, Requirement
from trove_classifiers import all_classifiers, deprecated_classifiers

from .errors import InvalidRequest
from .upload import CORE_METADATA_HELP, UploadForm

SUPPORTED_METADATA_VERSIONS = {"1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5"}
SUMMARY_LIMIT = 512
LOCAL_VERSION_HELP = (
    "See https://packaging.python.org/specifications/version-specifiers/#local-version-identifiers "
    "for more information."
)
DESCRIPTION_HELP = "See https://pypi.org/help/#description-content-type for more information."

DYNAMIC_FIELDS = {
    name.lower()
    for name in (
        "Platform Supported-Platform Summary Description Description-Content-Type Keywords Home-Page "
        "Download-Url Author Author-Email Maintainer Maintainer-Email License License-Expression "
        "License-File Classifier Requires-Dist Requires-Python Requires-External Project-Url "
        "Provides-Extra Provides-Dist Obsoletes-Dist Requires Provides Obsoletes Import-Name "
        "Import-Namespace"
    ).split()
}

_ERROR_ORDER = ("metadata-version", "name", "version")

# What each field of RawMetadata holds: str, list[str] or dict[str, str].
_RAW_TYPES = typing.get_type_hints(RawMetadata)
# Form field names are the raw names, except for these (PyPI's upload API).
_FORM_NAMES = {
    "platforms": "platform",
    "supported_platforms": "supported_platform",
    "license_files": "license_file",
    "import_names": "import_name",
    "import_namespaces": "import_namespace",
}
_FORM_TO_RAW = {_FORM_NAMES.get(raw, raw): raw for raw in _RAW_TYPES}

# Fields metadata 1.1 added; stdlib distutils declares 1.0 while sending them.
_FIELDS_OF_1_1 = {"classifiers", "download_url", "requires", "provides", "obsoletes"}


def _error(errors: list[InvalidMetadata]) -> InvalidRequest:
    """
    The one error to report, PyPI-style: metadata version first, then name,
    then version, then by field name.
    """
    by_field: dict[str, list[InvalidMetadata]] = {}
    for error in errors:
        by_field.setdefault(error.field, []).append(error)
    for field_name in _ERROR_ORDER:
        if field_name in by_field:
            break
    else:
        field_name = sorted(by_field)[0]
    error = by_field[field_name][0]
    text = str(error)
    if text.startswith("The use of local versions"):
        return InvalidRequest(f"{text} {LOCAL_VERSION_HELP}")
    return InvalidRequest(f"{text}{'' if text.endswith('.') else '.'} {CORE_METADATA_HELP}")


def _validated(raw: dict[str, Any], unparsed: dict[str, list[str]]) -> Metadata:
    errors: list[InvalidMetadata] = []
    for key in unparsed:
        errors.append(InvalidMetadata(key, f"{key!r} has invalid data"))
    try:
        metadata = Metadata.from_raw(typing.cast(RawMetadata, raw), validate=True)
    except ExceptionGroup as group:
        errors.extend(e for e in group.exceptions if isinstance(e, InvalidMetadata))
        raise _error(errors or [InvalidMetadata("metadata", "The metadata could not be read")]) from None
    errors.extend(_index_rules(metadata))
    if errors:
        raise _error(errors)
    return metadata


def _valid_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc or parts.path)


def _index_rules(metadata: Metadata) -> list[InvalidMetadata]:
    """
    PyPI's rules on top of the core metadata specification.
    """
    errors: list[InvalidMetadata] = []
    if metadata.metadata_version not in SUPPORTED_METADATA_VERSIONS:
        errors.append(
            InvalidMetadata("metadata-version", f"{metadata.metadata_version!r} is not a valid metadata version")
        )
    if metadata.version.local:
        errors.append(InvalidMetadata("version", f"The use of local versions in '{metadata.version}' is not allowed."))
    if metadata.summary is not None:
        if len(metadata.summary) > SUMMARY_LIMIT:
            errors.append(InvalidMetadata("summary", f"'summary' field must be {SUMMARY_LIMIT} characters or less."))
        if "\n" in metadata.summary.strip():
            errors.append(InvalidMetadata("summary", "'summary' must be a single line."))
    for field_name, email_name in (("author_email", "author-email"), ("maintainer_email", "maintainer-email")):
        value = getattr(metadata, field_name)
        if value is None:
            continue
        for _, address in email.utils.getaddresses([value]):
            if not address:
                continue
            try:
                email_validator.validate_email(address, check_deliverability=False)
            except email_validator.EmailNotValidError as e:
                errors.append(InvalidMetadata(email_name, f"{address!r} is not a valid email address: {e}"))
    classifiers = set(metadata.classifiers or [])
    for classifier in sorted(classifiers - set(all_classifiers)):
        errors.append(InvalidMetadata("classifier", f"{classifier!r} is not a valid classifier."))
    for classifier in sorted(classifiers & deprecated_classifiers.keys()):
        replacements = deprecated_classifiers[classifier]
        if replacements:
            text = f"The classifier {classifier!r} has been deprecated, use one of {replacements} instead."
        else:
            text = f"The classifier {classifier!r} has been deprecated."
        errors.append(InvalidMetadata("classifier", text))
    for field_name, email_name in (("home_page", "home-page"), ("download_url", "download-url")):
        url = getattr(metadata, field_name)
        if url is not None and not _valid_url(url):
            errors.append(InvalidMetadata(email_name, f"{url!r} is not a valid url."))
    for label, url in (metadata.project_urls or {}).items():
        if not label:
            errors.append(InvalidMetadata("project-url", "Must have a label"))
        elif len(label) > 32:
            errors.append(InvalidMetadata("project-url", f"{label!r} must be 32 characters or less."))
        elif not url:
            errors.append(InvalidMetadata("project-url", "Must have a URL"))
        elif not _valid_url(url):
            errors.append(InvalidMetadata("project-url", f"{url!r} is not a valid url"))
    for field_name, email_name in (("provides_dist", "provides-dist"), ("obsoletes_dist", "obsoletes-dist")):
        for text in getattr(metadata, field_name) or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement as e:
                errors.append(InvalidMetadata(email_name, f"{text!r} is invalid: {e}"))
                continue
            if requirement.url is not None:
                errors.append(InvalidMetadata(email_name, f"Can't have direct dependency: {text!r}"))
    for requirement in metadata.requires_dist or []:
        if requirement.url is not None:
            errors.append(InvalidMetadata("requires-dist", f"Can't have direct dependency: {requirement}"))
    for key in metadata.dynamic or []:
        if key.lower() not in DYNAMIC_FIELDS:
            errors.append(InvalidMetadata("dynamic", f"Dynamic field {key!r} is not a valid dynamic field."))
    if metadata.license and metadata.license_expression:
        errors.append(
            InvalidMetadata(
                "license",
                "License is deprecated when License-Expression is present. Only License-Expression should be present.",
            )
        )
    return errors


def _without_placeholders(raw: dict[str, Any]) -> dict[str, Any]:
    """
    distutils writes C{UNKNOWN} for every field it has no value for (in
    PKG-INFO and in the form); PyPI drops them, and so do we.
    """
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            if value.strip() != "UNKNOWN":
                cleaned[key] = value
        elif isinstance(value, list):
            kept = [v for v in value if not (isinstance(v, str) and v.strip() == "UNKNOWN")]
            if kept:
                cleaned[key] = kept
        else:
            cleaned[key] = value
    return cleaned


_DESCRIPTION_HEADER = re.compile(rb"^description:", re.IGNORECASE | re.MULTILINE)


def _unfold_description(description: str) -> str:
    """
    Metadata before 2.1 carries the description in a header, its lines after
    the first indented by 8 spaces (distutils) or by 7 spaces and a bar
    (setuptools); take that indentation off.
    """
    lines = description.split("\n")
    for index in range(1, len(lines)):
        line = lines[index]
        if line.startswith("       |"):
            lines[index] = line[8:]
        elif line.startswith(" " * 8):
            lines[index] = line[8:]
        elif not line.strip():
            lines[index] = ""
    return "\n".join(lines).rstrip() + "\n"


def from_file(data: bytes) -> Metadata:
    """
    The metadata in a distribution's METADATA or PKG-INFO.

    :raises InvalidRequest: when it is invalid, with PyPI's message.
    """
    raw, unparsed = parse_email(data)
    raw_dict = _without_placeholders(dict(raw))
    headers = re.split(rb"\r?\n\r?\n", data, maxsplit=1)[0]
    if "description" in raw_dict and _DESCRIPTION_HEADER.search(headers):
        raw_dict["description"] = _unfold_description(raw_dict["description"])
    return _validated(raw_dict, unparsed)


def from_form(form: UploadForm) -> Metadata:
    """
    The metadata in the legacy API's form fields (C{submit}, C{verify}).
    """
    raw: dict[str, Any] = {}
    unparsed: dict[str, list[str]] = {}
    for name, values in form.fields.items():
        raw_name = _FORM_TO_RAW.get(name)
        values = [v for v in values if v != ""]
        if raw_name is None or not values:
            continue
        kind = _RAW_TYPES[raw_name]
        if raw_name == "keywords":
            # distutils sends each keyword as its own part; PyPI expects one
            # comma-separated part.  Take both.
            raw[raw_name] = [k.strip() for v in values for k in v.split(",") if k.strip()]
        elif raw_name == "project_urls":
            urls: dict[str, str] = {}
            for value in values:
                label, _, url = value.partition(",")
                if label.strip() in urls:
                    unparsed[name] = values
                urls[label.strip()] = url.strip()
            raw[raw_name] = urls
        elif kind is str:
            if len(values) == 1:
                raw[raw_name] = values[0]
            else:
                unparsed[name] = values
        else:
            raw[raw_name] = values
    raw = _without_placeholders(raw)
    if raw.get("metadata_version") == "1.0" and _FIELDS_OF_1_1 & raw.keys():
        # stdlib distutils declares metadata 1.0 but sends the 1.1 fields it
        # has (classifiers, download_url, requires...); read it as the 1.1
        # it really is rather than refuse every distutils register.
        raw["metadata_version"] = "1.1"
    return _validated(raw, unparsed)


def check_description(metadata: Metadata) -> None:
    """
    The description must render in its content type, as on PyPI.
    """
    if not metadata.description:
        return
    content_type = metadata.description_content_type or "text/x-rst"
    if not _renders(metadata.description, content_type):
        if metadata.description_content_type:
            message = f"The description failed to render for '{content_type}'."
        else:
            message = "The description failed to render in the default format of reStructuredText."
        raise InvalidRequest(f"{message} {DESCRIPTION_HELP}")


@functools.lru_cache(maxsize=256)
def _renders(text: str, content_type: str) -> bool:
    """
    Whether a description renders.  A release's wheel and sdist, and its next
    releases, usually carry the same README; docutils costs milliseconds per
    render, so the answer is remembered.
    """
    return render_description(text, content_type) is not None


def render_description(text: str, content_type: str | None) -> str | None:
    """
    Safe HTML for a description (readme_renderer, as on PyPI), or C{None}
    when it does not render.
    """
    kind, _, parameters = (content_type or "text/x-rst").partition(";")
    kind = kind.strip().lower()
    if kind == "text/markdown":
        variant = "GFM"
        for parameter in parameters.split(";"):
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "variant" and value.strip():
                variant = value.strip()
        return readme_renderer.markdown.render(text, variant=variant)
    if kind == "text/plain":
        return readme_renderer.txt.render(text)
    return readme_renderer.rst.render(text)


def as_record(metadata: Metadata) -> dict[str, Any]:
    """
    The metadata as stored with a release: plain JSON values, empty fields
    left out.
    """
    record: dict[str, Any] = {}
    for name in _RAW_TYPES:
        if name in ("name", "version", "summary", "description", "description_content_type", "requires_python"):
            continue
        value = getattr(metadata, name, None)
        if value is None or value == [] or value == {}:
            continue
        if isinstance(value, list):
            value = [str(v) for v in value]
        elif isinstance(value, dict):
            value = {str(k): str(v) for k, v in value.items()}
        else:
            value = str(value)
        record[name] = value
    return record
