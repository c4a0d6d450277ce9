"""Identities and networks: principals to identities, people, address prefixes."""

from __future__ import annotations

import pytest

from detector.features.identity import ip_prefix, is_human, principal_identity


@pytest.mark.parametrize(
    ("principal", "identity"),
    [
        ("arn:aws:sts::1:assumed-role/Admin/alice-session", "arn:aws:sts::1:assumed-role/Admin"),
        ("arn:aws:sts::1:assumed-role/Admin/i-0abc", "arn:aws:sts::1:assumed-role/Admin"),
        ("arn:aws:sts::1:assumed-role/Admin", "arn:aws:sts::1:assumed-role/Admin"),
        ("arn:aws:iam::1:user/alice", "arn:aws:iam::1:user/alice"),
        ("arn:aws:iam::1:role/app", "arn:aws:iam::1:role/app"),
        ("svc@proj.iam.gserviceaccount.com", "svc@proj.iam.gserviceaccount.com"),
        ("bob@example.com", "bob@example.com"),
    ],
)
def test_principal_identity(principal: str, identity: str) -> None:
    assert principal_identity(principal) == identity


def test_is_human() -> None:
    assert is_human("arn:aws:iam::1:user/alice")
    assert is_human("arn:aws:sts::1:assumed-role/AWSReservedSSO_Admin_123")
    assert is_human("bob@example.com")
    assert not is_human("svc@proj.iam.gserviceaccount.com")
    assert not is_human("arn:aws:sts::1:assumed-role/orders-app")


@pytest.mark.parametrize(
    ("address", "kwargs", "prefix"),
    [
        ("198.51.100.23", {}, "198.51.100.0/24"),
        ("198.51.100.23", {"v4_bits": 16}, "198.51.0.0/16"),
        ("2001:db8:1:2::5", {}, "2001:db8:1::/48"),
        ("2001:db8:1:2::5", {"v6_bits": 64}, "2001:db8:1:2::/64"),
        ("kms.amazonaws.com", {}, "kms.amazonaws.com"),
        ("", {}, ""),
    ],
)
def test_ip_prefix(address: str, kwargs: dict[str, int], prefix: str) -> None:
    assert ip_prefix(address, **kwargs) == prefix


def test_ip_prefix_treats_ipv4_mapped_addresses_as_ipv4() -> None:
    """Dual-stack listeners log IPv4 callers as ::ffff:a.b.c.d; they must not all share '::/48'."""
    assert ip_prefix("::ffff:198.51.100.23") == ip_prefix("198.51.100.23") == "198.51.100.0/24"
    assert ip_prefix("::ffff:198.51.100.23") != ip_prefix("::ffff:203.0.113.9")
