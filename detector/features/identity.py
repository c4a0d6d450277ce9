"""Stable identities for profiles: principals without session names, addresses as prefixes."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)
def principal_identity(principal: str) -> str:
    """The identity a profile should learn, dropping per-session parts that change every login.

    >>> principal_identity("arn:aws:sts::111122223333:assumed-role/Admin/alice-session-42")
    'arn:aws:sts::111122223333:assumed-role/Admin'
    >>> principal_identity("arn:aws:iam::111122223333:user/alice")
    'arn:aws:iam::111122223333:user/alice'
    """
    if principal.startswith("arn:aws:sts::") and ":assumed-role/" in principal:
        head, _, rest = principal.partition(":assumed-role/")
        role = rest.split("/", 1)[0]
        return f"{head}:assumed-role/{role}"
    return principal


@lru_cache(maxsize=65536)
def ip_prefix(address: str, v4_bits: int = 24, v6_bits: int = 48) -> str:
    """Network prefix of an address (``/24`` and ``/48`` by default); the text itself otherwise.

    >>> ip_prefix("198.51.100.23"), ip_prefix("2001:db8:1:2::5"), ip_prefix("kms.amazonaws.com")
    ('198.51.100.0/24', '2001:db8:1::/48', 'kms.amazonaws.com')
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    bits = v4_bits if ip.version == 4 else v6_bits
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@lru_cache(maxsize=65536)
def is_cloud_service(principal: str) -> bool:
    """True for a cloud provider's own service acting for a customer (``s3.amazonaws.com``).

    >>> is_cloud_service("dynamodb.amazonaws.com"), is_cloud_service("arn:aws:iam::1:role/app")
    (True, False)
    """
    aws = principal.endswith(".amazonaws.com") and ":" not in principal
    return aws or "@gcp-sa-" in principal  # Google-managed service agents, not customer accounts


@lru_cache(maxsize=65536)
def is_human(principal: str) -> bool:
    """True for principals that look like people rather than workloads (IAM users, SSO, UPNs).

    >>> is_human("arn:aws:iam::1:user/alice"), is_human("arn:aws:iam::1:role/app")
    (True, False)
    """
    return (
        ":user/" in principal
        or "AWSReservedSSO" in principal
        or ("@" in principal and "gserviceaccount" not in principal)
    )


@lru_cache(maxsize=65536)
def network_block(prefix: str) -> str:
    """The provider block a network prefix lies in (``/16`` for IPv4, ``/32`` for IPv6).

    Cloud workloads change addresses within their provider's regional blocks all the time; a
    credential used from another block is used from somewhere else.

    >>> network_block("3.8.32.0/24"), network_block("2001:db8:1::/48"), network_block("kms.amazonaws.com")
    ('3.8.0.0/16', '2001:db8::/32', 'kms.amazonaws.com')
    """
    address = prefix.split("/", 1)[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return prefix
    bits = 16 if ip.version == 4 else 32
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))
