"""Who calls KMS in the fleet world, and how each caller's principal, address and agent vary over time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.random import Generator

from ._places import Office, Place, Region
from ._traffic import DAY, FloatArray, IntArray, Tables, digest, hex_id

# (replica, session epoch, host epoch) packed in one int64: 22 bits hold the epoch of any refresh
# period of twenty minutes or more (the shortest used) until about 2130
_EPOCH_BITS = 22
_EPOCH_MASK = (1 << _EPOCH_BITS) - 1
_REPLICA_SHIFT = 2 * _EPOCH_BITS


@dataclass(frozen=True, slots=True)
class Workload:
    """A service role running in one region; its replicas hold their own sessions and hosts.

    Session names change every ``session_seconds`` (credential refresh) and hosts every
    ``host_seconds`` (pod, task or instance replacement). Calls leave through the ``nat_ips`` or,
    when there are none, from private addresses behind a VPC endpoint in ``subnet``.
    """

    role: str
    account: str
    service: str
    compute: str  # eks | ecs | ec2 | lambda | actions
    region: Region
    replicas: int
    session_seconds: float
    host_seconds: float
    nat_ips: tuple[str, ...]
    subnet: str
    agents: tuple[str, str]
    upgrade_at: float
    salt: int

    @property
    def name(self) -> str:
        """Stable name of the caller (role, account and region)."""
        return f"{self.account}/{self.role}@{self.region.name}"


@dataclass(frozen=True, slots=True)
class Person:
    """Someone working from an office and from home, in the office's time zone."""

    name: str
    principal: str
    office: Office
    office_ips: tuple[str, ...]
    home_block: str
    home_place: Place
    remote_share: float
    cli_agent: str
    console_agent: str
    on_call: bool
    admin: bool
    salt: int


@dataclass(frozen=True, slots=True)
class Fixed:
    """An identity with one principal, one address and one agent (automation, AWS services)."""

    name: str
    principal: str
    ip: str
    place: Place
    agent: str


Identity = Workload | Person | Fixed


def assumed_role(account: str, role: str, session: str) -> str:
    """The STS assumed-role ARN CloudTrail logs for a role session."""
    return f"arn:aws:sts::{account}:assumed-role/{role}/{session}"


def _session_name(workload: Workload, replica: int, session_epoch: int, host_epoch: int) -> str:
    """Session name as each compute platform sets it."""
    if workload.compute == "eks":
        started = int(session_epoch * workload.session_seconds - _phase(workload, replica))
        return f"botocore-session-{started}"
    if workload.compute == "ecs":
        return hex_id(32, workload.salt, workload.role, replica, host_epoch)
    if workload.compute == "ec2":
        return "i-0" + hex_id(16, workload.salt, workload.role, replica, host_epoch)
    if workload.compute == "actions":
        return "GitHubActions"
    return workload.role  # Lambda names the session after the function


def _host_ip(workload: Workload, replica: int, host_epoch: int) -> str:
    """Address a replica's calls leave from while it lives."""
    if workload.nat_ips:
        return workload.nat_ips[replica % len(workload.nat_ips)]
    mixed = digest(workload.salt, workload.role, replica, host_epoch)
    if workload.compute == "actions":
        return f"{workload.subnet}.{mixed % 256}.{(mixed >> 8) % 254 + 1}"
    return f"{workload.subnet}.{(mixed >> 8) % 250 + 4}"


def _phase(workload: Workload, replica: int) -> float:
    """Offset of a replica's refresh cycle, so replicas do not refresh together."""
    return float(digest(workload.salt, replica) % 3600)


def workload_codes(
    workload: Workload, ts: FloatArray, replicas: IntArray, tables: Tables
) -> tuple[IntArray, IntArray]:
    """Principal and address codes of calls at ``ts`` by the given replicas."""
    phases = np.array([_phase(workload, r) for r in range(workload.replicas)])[replicas]
    session = np.floor((ts + phases) / workload.session_seconds).astype(np.int64)
    host = np.floor((ts + phases) / workload.host_seconds).astype(np.int64)
    combined = (replicas.astype(np.int64) << _REPLICA_SHIFT) | (session << _EPOCH_BITS) | host
    unique, inverse = np.unique(combined, return_inverse=True)
    principals = np.empty(unique.size, dtype=np.int64)
    addresses = np.empty(unique.size, dtype=np.int64)
    for index, value in enumerate(unique.tolist()):
        principals[index], addresses[index] = _replica_codes(workload, value, tables)
    return principals[inverse], addresses[inverse]


def _replica_codes(workload: Workload, combined: int, tables: Tables) -> tuple[int, int]:
    """Codes of one (replica, session epoch, host epoch), cached per workload."""
    cache_key = (workload.name, workload.salt, combined)
    found = tables.cache.get(cache_key)
    if found is None:
        replica, session, host = (
            combined >> _REPLICA_SHIFT,
            (combined >> _EPOCH_BITS) & _EPOCH_MASK,
            combined & _EPOCH_MASK,
        )
        name = _session_name(workload, replica, session, host)
        principal = tables.principal(assumed_role(workload.account, workload.role, name))
        address = tables.address(_host_ip(workload, replica, host), workload.region.place)
        found = tables.cache[cache_key] = (principal, address)
    return found


def workload_agents(workload: Workload, ts: FloatArray, tables: Tables) -> IntArray:
    """The SDK agent of each call: the old one until the deploy that upgraded it."""
    before, after = tables.agent(workload.agents[0]), tables.agent(workload.agents[1])
    return np.where(ts >= workload.upgrade_at, after, before).astype(np.int64)


def person_addresses(person: Person, ts: FloatArray, rng: Generator, tables: Tables) -> IntArray:
    """Office or home address of each call: remote days are drawn per person and local day."""
    day = np.floor((ts + person.office.utc_offset * 3600.0) / DAY).astype(np.int64)
    unique, inverse = np.unique(day, return_inverse=True)
    home = np.array([person_home_code(person, int(d), tables) for d in unique.tolist()], dtype=np.int64)
    remote = np.array([is_remote_day(person, int(d)) for d in unique.tolist()], dtype=bool)
    office_codes = np.array([tables.address(ip, person.office.place) for ip in person.office_ips])
    office = office_codes[rng.integers(0, len(office_codes), size=ts.size)]
    return np.where(remote[inverse], home[inverse], office).astype(np.int64)


def is_remote_day(person: Person, day: int) -> bool:
    """Whether the person works from home on a local day."""
    return digest(person.salt, "remote", day) % 1000 < person.remote_share * 1000


def person_home_code(person: Person, day: int, tables: Tables) -> int:
    """The home address on a local day (the ISP reassigns it every few days)."""
    mixed = digest(person.salt, "home", day // 3)
    return tables.address(f"{person.home_block}.{mixed % 256}.{(mixed >> 8) % 254 + 1}", person.home_place)
