"""The key catalog: lookup order, defaults, caching, malformed input."""

from __future__ import annotations

import pytest

from detector.domain.catalog import KeyCatalog, KeyInfo
from detector.domain.errors import ConfigError

CATALOG = {
    "defaults": {"environment": "unknown", "classification": "internal"},
    "keys": [
        {"match": "arn:aws:kms:*:key/prod-*", "environment": "production", "classification": "restricted"},
        {"match": "arn:aws:kms:*", "environment": "staging"},
        {
            "match": "arn:aws:kms:eu-west-1:1:key/prod-special",
            "environment": "development",
            "owner": "team-x",
        },
        {"match": "alias/payments", "environment": "production", "classification": "confidential"},
        {"match": "alias/ledger-*", "environment": "production", "classification": "restricted"},
    ],
}


@pytest.mark.parametrize(
    ("key_id", "alias", "environment", "classification"),
    [
        ("arn:aws:kms:eu-west-1:1:key/prod-special", None, "development", "internal"),  # exact beats globs
        ("arn:aws:kms:eu-west-1:1:key/prod-7", None, "production", "restricted"),  # first matching glob
        ("arn:aws:kms:eu-west-1:1:key/other", None, "staging", "internal"),  # second glob
        ("1234abcd", "alias/payments", "production", "confidential"),  # exact alias
        ("1234abcd", "alias/ledger-eu", "production", "restricted"),  # alias glob
        ("projects/p/keyRings/r/cryptoKeys/k", None, "unknown", "internal"),  # default
        ("projects/p/keyRings/r/cryptoKeys/k", "alias/unknown", "unknown", "internal"),
    ],
)
def test_catalog_lookup_order(key_id: str, alias: str | None, environment: str, classification: str) -> None:
    info = KeyCatalog.from_mapping(CATALOG).lookup(key_id, alias)
    assert (info.environment, info.classification) == (environment, classification)


def test_catalog_exact_entry_fills_missing_fields_from_defaults() -> None:
    info = KeyCatalog.from_mapping(CATALOG).lookup("arn:aws:kms:eu-west-1:1:key/prod-special")
    assert info == KeyInfo("development", "internal", "team-x", "")


def test_catalog_defaults_come_from_settings_then_the_file() -> None:
    settings_defaults = {"environment": "production", "classification": "restricted"}
    assert KeyCatalog.from_mapping(None, settings_defaults).lookup("k").environment == "production"
    own = KeyCatalog.from_mapping({"defaults": {"environment": "staging"}}, settings_defaults).lookup("k")
    assert (own.environment, own.classification) == ("staging", "restricted")


def test_catalog_lookups_are_cached_and_stable() -> None:
    cat = KeyCatalog.from_mapping(CATALOG)
    first = cat.lookup("arn:aws:kms:eu-west-1:1:key/prod-9")
    assert cat.lookup("arn:aws:kms:eu-west-1:1:key/prod-9") is first


@pytest.mark.parametrize("bad", [["not", "a", "mapping"], {"keys": [{"environment": "x"}]}, {"keys": ["k"]}])
def test_catalog_rejects_malformed_input(bad: object) -> None:
    with pytest.raises(ConfigError):
        KeyCatalog.from_mapping(bad)  # type: ignore[arg-type]
