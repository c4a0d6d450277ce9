"""Synthetic AWS KMS usage logs for one organisation, with labelled attacks and benign surprises.

The history span is clean traffic (services, people, AWS integrations, scheduled rotations and routine
key administration). The test span continues the same traffic and adds attack scenarios and benign
surprises, each labelled with its keys, principal and time range. Every random draw comes from one
PCG64 generator, so a seed always gives the same output.

``strength`` (``0 < strength <= 1``) weakens every attack toward normal traffic, so detection can be
measured on subtle attacks; benign surprises keep their full size. A rate multiplier ``m`` (how many times
the normal rate an attack runs at) becomes ``1 + (m - 1) * strength`` and a count ``n`` becomes
``max(1, round(n * strength))``, never below what the family needs. Durations, places, people and keys
stay as they are. Each family is generated exactly as at full strength, with the same random draws, and
then thinned: a burst keeps an evenly spaced subset of its events (always its first one, so the label
starts at the same moment) and a sequence of operations keeps its last, most damaging calls. So a seed
picks the same instances, keys, principals and start times at every strength. Per family, strength scales:

- exfiltration_spike: the rate multiplier (20 to 60 times the key's mean rate).
- foreign_geography: the number of calls from the foreign place.
- impossible_travel: the number of far-away calls (at least one; the owner's own call at home before it is
  background and stays).
- destructive_operations: the number of operations issued; the destructive last call always stays.
- denied_probing: the number of keys probed (at least two), each with its one to three refused calls.
- low_and_slow: the peak level: the key ends at ``1 + level`` times its usual rate, ``1 + level * strength``
  when weakened.
- new_principal: the number of calls by the new principal.
- off_hours: the number of night-time calls.
- ransom_reencryption: the number of re-encryption calls on both keys (at least one ReEncrypt) and of the
  final key-administration calls (the ScheduleKeyDeletion or PutKeyPolicy stays).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.random import PCG64, Generator
from numpy.typing import NDArray

from detector.domain.events import Event, format_ts, parse_ts

GENERATOR = "keywatch-simulate/1"
SOURCE = "aws-kms"
# A Saturday: with the defaults the history holds a weekend and the test day is a month-end.
DEFAULT_START = parse_ts("2024-04-27T00:00:00Z")
ATTACKS = (
    "exfiltration_spike",
    "foreign_geography",
    "impossible_travel",
    "destructive_operations",
    "denied_probing",
    "low_and_slow",
    "new_principal",
    "off_hours",
    "ransom_reencryption",
)
BENIGN = ("batch_surge", "region_expansion")

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_OUTCOMES = ("success", "denied", "error")
_ENV_TOKEN = {"production": "prod", "staging": "staging", "development": "dev"}

# region: country, lat, lon, UTC offset in hours (summer time), AWS public /16 blocks seen there
_REGIONS: dict[str, tuple[str, float, float, float, tuple[str, ...]]] = {
    "us-east-1": ("US", 39.0438, -77.4874, -4, ("3.208", "3.215", "34.195", "34.204", "44.197", "54.157")),
    "us-west-2": ("US", 45.8399, -119.7006, -7, ("34.210", "34.217", "44.228", "44.237", "54.186")),
    "eu-central-1": ("DE", 50.1109, 8.6821, 2, ("3.120", "3.122", "18.184", "18.194", "52.28", "35.157")),
    "eu-west-1": ("IE", 53.3498, -6.2603, 1, ("34.240", "34.246", "52.208", "52.212", "54.72")),
    "ap-southeast-1": ("SG", 1.3521, 103.8198, 8, ("13.228", "13.229", "18.136", "18.139", "54.169")),
}
_REGION_WEIGHTS = {"us-east-1": 0.45, "us-west-2": 0.1, "eu-central-1": 0.25, "eu-west-1": 0.12}
_REGION_WEIGHTS["ap-southeast-1"] = 0.08
_SECONDARY = {"us-east-1": "us-west-2", "us-west-2": "us-east-1", "eu-central-1": "eu-west-1"}
_SECONDARY["eu-west-1"] = "eu-central-1"
# office: country, lat, lon, UTC offset, ISP /16 blocks for office egress and home connections
_OFFICES: dict[str, tuple[str, float, float, float, tuple[str, ...]]] = {
    "new-york": ("US", 40.7128, -74.0060, -4, ("65.112", "72.229", "98.116", "108.41", "173.56")),
    "berlin": ("DE", 52.5200, 13.4050, 2, ("84.128", "84.155", "87.123", "91.64", "93.192")),
    "dublin": ("IE", 53.3498, -6.2603, 1, ("86.40", "86.43", "89.100", "89.101", "109.76")),
    "singapore": ("SG", 1.3521, 103.8198, 8, ("116.86", "116.87", "118.200", "118.201", "101.127")),
}
_OFFICE_OF = {"US": "new-york", "DE": "berlin", "IE": "dublin", "SG": "singapore"}
_ADMINS = {"new-york": "alice", "berlin": "bob", "dublin": "carol", "singapore": "deepa"}
# places the organisation never operates from
_FOREIGN: dict[str, tuple[str, float, float, tuple[str, ...]]] = {
    "sao-paulo": ("BR", -23.5505, -46.6333, ("177.12", "189.40", "200.158")),
    "bucharest": ("RO", 44.4268, 26.1025, ("86.120", "5.13", "79.112")),
    "lagos": ("NG", 6.5244, 3.3792, ("105.112", "197.210")),
    "hanoi": ("VN", 21.0278, 105.8342, ("113.160", "14.177")),
    "amsterdam": ("NL", 52.3676, 4.9041, ("185.107", "45.83", "89.248")),
    "johannesburg": ("ZA", -26.2041, 28.0473, ("41.13", "105.224")),
    "mumbai": ("IN", 19.0760, 72.8777, ("49.36", "103.211")),
}
_SERVICES = {
    **dict.fromkeys(
        ("payments", "orders", "checkout", "identity", "session", "gateway", "search", "catalog"), "always"
    ),
    **dict.fromkeys(
        ("pricing", "notifications", "inventory", "shipping", "fraud", "loyalty", "media"), "always"
    ),
    **dict.fromkeys(
        ("reporting", "analytics", "crm", "hr-portal", "support", "docs", "payroll", "billing", "ledger"),
        "business",
    ),
    **dict.fromkeys(("backup", "etl", "data-lake", "warehouse", "ml-features", "audit-log"), "batch"),
}
_RESTRICTED = frozenset(
    {"payments", "checkout", "identity", "fraud", "payroll", "billing", "ledger", "hr-portal"}
)
_ROLE_SUFFIXES = ("app", "worker", "api", "consumer", "cron", "sync", "jobs", "reader")
_HUMANS = (
    "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken", "liam", "maria", "nina",
    "omar", "priya", "raj", "sara", "tom", "uma", "victor", "wei", "xin", "yusuf", "zoe",
)  # fmt: skip
_NEWCOMERS = ("kevin", "olivia", "peter", "quinn", "rosa", "steve", "tara", "ursula", "vikram", "wendy")
_SDK_UAS = (
    "aws-sdk-java/2.20.162 Linux/5.10.205-195.807.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.9+8-LTS "
    "Java/17.0.9 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy",
    "aws-sdk-java/2.21.29 Linux/6.1.66-91.160.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.1+12-LTS "
    "Java/21.0.1 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/standard",
    "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#5.10.205-195.807.amzn2.x86_64 md/arch#x86_64 "
    "lang/python#3.11.6 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0",
    "Boto3/1.28.57 md/Botocore#1.31.57 ua/2.0 os/linux#5.15.0-1051-aws md/arch#x86_64 "
    "lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.31.57",
    "aws-sdk-go-v2/1.24.0 os/linux lang/go#1.21.5 md/GOOS#linux md/GOARCH#amd64 api/kms#1.27.5",
    "aws-sdk-js/3.474.0 ua/2.0 os/linux#5.10.201-191.748.amzn2.x86_64 lang/js md/nodejs#20.10.0 "
    "api/kms#3.474.0",
    "aws-sdk-dotnet-coreclr/3.7.300.20 aws-sdk-dotnet-core/3.7.301.2 .NET_Core/6.0.25 OS/Linux_5.10.201 "
    "ClientAsync",
)
_HUMAN_UAS = (
    "aws-cli/2.15.4 Python/3.11.6 Darwin/23.2.0 exe/x86_64 prompt/off",
    "aws-cli/2.13.25 Python/3.11.5 Linux/6.5.0-14-generic exe/x86_64.ubuntu.22 prompt/off",
    "Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/macos#23.2.0 md/arch#arm64 lang/python#3.12.0 "
    "md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
)
_LAMBDA_UA = (
    "Boto3/1.34.42 md/Botocore#1.34.42 ua/2.0 os/linux#5.10.209-219.827.amzn2.x86_64 md/arch#x86_64 "
    "lang/python#3.12.1 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy "
    "Botocore/1.34.42"
)
_APP_OPS = {
    "always": {"Decrypt": 0.56, "GenerateDataKey": 0.24, "Encrypt": 0.14, "DescribeKey": 0.06},
    "business": {"Decrypt": 0.62, "GenerateDataKey": 0.16, "Encrypt": 0.16, "DescribeKey": 0.06},
    "batch": {"GenerateDataKey": 0.36, "Encrypt": 0.26, "Decrypt": 0.32, "DescribeKey": 0.06},
}
_HUMAN_OPS = {"Decrypt": 0.6, "Encrypt": 0.22, "DescribeKey": 0.12, "GenerateDataKey": 0.06}
_AWS_SERVICES = {
    "dynamodb.amazonaws.com": {"Decrypt": 0.55, "GenerateDataKey": 0.15, "DescribeKey": 0.3},
    "s3.amazonaws.com": {"GenerateDataKey": 0.55, "Decrypt": 0.45},
    "rds.amazonaws.com": {"Decrypt": 0.5, "GenerateDataKeyWithoutPlaintext": 0.2, "DescribeKey": 0.3},
    "secretsmanager.amazonaws.com": {"Decrypt": 0.7, "GenerateDataKey": 0.3},
    "lambda.amazonaws.com": {"Decrypt": 1.0},
}
_ADMIN_READS = ("DescribeKey", "GetKeyPolicy", "ListResourceTags", "ListAliases", "GetKeyRotationStatus")


@dataclass(slots=True)
class Simulation:
    """Generated history and test logs (each sorted by time), their labels and a key catalog."""

    history: list[Event]
    test: list[Event]
    labels: dict[str, Any]
    catalog: dict[str, Any]
    label_event_ids: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class _Addr:
    ip: str
    country: str
    lat: float | None
    lon: float | None


@dataclass(slots=True)
class _Key:
    key_id: str
    alias: str | None
    region: str
    service: str = ""
    env: str = ""
    pattern: str = ""
    tz: float = 0.0
    classification: str = ""
    rate: FloatArray = field(default_factory=lambda: np.zeros(0))
    mean: float = 0.0


@dataclass(slots=True)
class _Stream:
    """One caller's traffic on one key."""

    key: int
    kind: str  # "app", "human" or "aws"
    owner: str  # service or person
    pools: IntArray  # principal indices per day: shape (days, pool size)
    addrs: list[int]
    addr_w: FloatArray
    uas: list[int]
    ops: dict[str, float]
    rate: FloatArray
    p_denied: float
    p_error: float
    seen: list[int] = field(default_factory=list)  # principals used in history, most used first


@dataclass(slots=True)
class _Service:
    name: str
    pattern: str
    region: str
    regions: dict[str, float]
    jobs: tuple[tuple[float, float, float], ...]
    roles: list[tuple[str, str, float]]  # suffix, session style, share
    uas: list[int]
    ops: dict[str, float]
    keys: list[int] = field(default_factory=list)
    addrs: dict[str, list[int]] = field(default_factory=dict)  # per account
    addr_w: dict[str, FloatArray] = field(default_factory=dict)  # per account, by region share
    pools: dict[tuple[str, str], IntArray] = field(default_factory=dict)


@dataclass(slots=True)
class _Human:
    name: str
    principal: int
    office: str
    addrs: list[int]  # office egress first, home connection last
    uas: list[int]
    admin: bool


@dataclass(slots=True, frozen=True)
class _Clock:
    start: float
    minutes: int
    test_min: int
    t: FloatArray

    @property
    def days(self) -> int:
        """Calendar days touched, counted from the start."""
        return -(-self.minutes // 1440)


@dataclass(slots=True)
class _Inst:
    scenario: str
    kind: str
    keys: list[int]
    principal: str | None
    description: str


class _Log:
    """Columnar event store with interned strings, filled in generation order."""

    def __init__(self) -> None:
        self.keys: list[_Key] = []
        self.addrs: list[_Addr] = []
        self.prefixes: set[str] = set()
        self.tables: dict[str, dict[str, int]] = {"principal": {}, "ua": {}, "op": {}}
        self.chunks: list[list[NDArray[Any]]] = []

    def intern(self, table: str, value: str) -> int:
        return self.tables[table].setdefault(value, len(self.tables[table]))

    def names(self, table: str) -> list[str]:
        return list(self.tables[table])

    def add_addr(self, addr: _Addr) -> int:
        self.addrs.append(addr)
        return len(self.addrs) - 1

    def add(
        self,
        ts: FloatArray,
        key: Any,
        op: Any,
        principal: Any,
        addr: Any,
        ua: Any,
        *,
        outcome: Any = 0,
        tag: int = -1,
    ) -> None:
        """Append one chunk; every column is an array shaped like ``ts`` or a scalar broadcast to it."""
        shape = ts.shape
        cols = [key, op, principal, addr, ua, outcome, tag]
        arrays = [np.broadcast_to(np.asarray(c, dtype=np.int64), shape) for c in cols]
        self.chunks.append([np.round(ts * 1000.0) / 1000.0, *arrays])


@dataclass(slots=True)
class _World:
    rng: Generator
    clock: _Clock
    log: _Log
    accounts: dict[str, str]
    services: list[_Service] = field(default_factory=list)
    humans: list[_Human] = field(default_factory=list)
    streams: list[_Stream] = field(default_factory=list)
    office_addrs: dict[str, list[int]] = field(default_factory=dict)
    busy: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    used_keys: set[int] = field(default_factory=set)
    used_people: set[str] = field(default_factory=set)
    instances: list[_Inst] = field(default_factory=list)
    history_uas: set[int] = field(default_factory=set)
    strength: float = 1.0


def simulate(
    *,
    keys: int = 30,
    days: float = 4,
    seed: int = 7,
    test_days: float = 1,
    start: float | None = None,
    strength: float = 1.0,
) -> Simulation:
    """Generate ``days`` of KMS usage for ``keys`` keys; the last ``test_days`` carry labelled scenarios.

    Parameters
    ----------
    keys
        Number of organisation keys (at least 3); outside keys used by attacks come on top.
    days, test_days
        Total span and the trailing test span, in days (``0 < test_days < days``).
    seed
        Seed of the single PCG64 generator; the same arguments give identical output.
    start
        Epoch seconds of the first minute (rounded down to the minute); defaults to
        :data:`DEFAULT_START`, so the output never depends on the clock.
    strength
        How strong the attacks are, ``0 < strength <= 1``: 0.3 gives a third of the extra rate or of the
        events of each attack (see the module docstring). At 1.0 the output is that of earlier versions;
        at any strength a seed gives the same instances, keys, principals and start times.

    Returns
    -------
    Simulation
        ``history`` (clean traffic) and ``test`` (traffic plus scenarios), each sorted by time; JSON-ready
        ``labels`` and ``catalog``; ``label_event_ids`` maps each scenario id to its injected events.
        Each scenario in :data:`ATTACKS` and :data:`BENIGN` has ``max(2, round(2 * test_days))`` instances.

    Examples
    --------
    >>> sim = simulate(keys=4, days=1, test_days=0.5, seed=1)
    >>> sorted({s["scenario"] for s in sim.labels["scenarios"]}) == sorted(ATTACKS + BENIGN)
    True
    >>> sim.history[-1].ts < sim.test[0].ts and sim.labels["meta"]["test_start"]
    '2024-04-27T12:00:00.000Z'
    """
    if keys < 3:
        raise ValueError("simulate needs at least 3 keys")
    if not 0 < test_days < days:
        raise ValueError("test_days must be positive and shorter than days")
    if not 0 < strength <= 1:
        raise ValueError("strength must be in (0, 1]")
    t0 = math.floor((DEFAULT_START if start is None else start) / 60.0) * 60.0
    minutes = round(days * 1440)
    test_min = minutes - round(test_days * 1440)
    clock = _Clock(t0, minutes, test_min, t0 + 60.0 * np.arange(minutes, dtype=np.float64))
    rng = Generator(PCG64(seed))
    accounts = _accounts(rng)
    w = _World(rng, clock, _Log(), accounts, strength=float(strength))
    _build_org(w, keys)
    _emit_baseline(w)
    _inject(w, max(2, round(2 * test_days)))
    args = {"seed": seed, "keys": keys, "days": days, "test_days": test_days, "strength": float(strength)}
    return _finish(w, args)


# ---------------------------------------------------------------- the organisation


def _accounts(rng: Generator) -> dict[str, str]:
    prod, nonprod = (str(a) for a in rng.integers(10**11, 10**12, size=2))
    return {"production": prod, "staging": nonprod, "development": nonprod}


def _uuid4s(rng: Generator, n: int) -> list[str]:
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    h = raw.tobytes().hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * n, 32)
    ]


def _pick(rng: Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _weighted(rng: Generator, table: dict[str, float]) -> str:
    names = list(table)
    p = np.asarray(list(table.values()), dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _new_addrs(
    w: _World, blocks: Sequence[str], geo: tuple[str, float | None, float | None], n: int
) -> list[int]:
    """Allocate ``n`` hosts in a /24 that no one has used yet."""
    while True:
        prefix = f"{_pick(w.rng, blocks)}.{int(w.rng.integers(0, 256))}"
        if prefix not in w.log.prefixes:
            w.log.prefixes.add(prefix)
            break
    hosts = np.sort(w.rng.choice(np.arange(4, 251), size=n, replace=False))
    return [w.log.add_addr(_Addr(f"{prefix}.{h}", *geo)) for h in hosts]


def _aws_addrs(w: _World, region: str, n: int) -> list[int]:
    country, lat, lon, _, blocks = _REGIONS[region]
    return _new_addrs(w, blocks, (country, lat, lon), n)


def _isp_addrs(w: _World, office: str, n: int) -> list[int]:
    country, lat, lon, _, blocks = _OFFICES[office]
    return _new_addrs(w, blocks, (country, lat, lon), n)


def _profile(
    pattern: str, t: FloatArray, tz: float, jobs: tuple[tuple[float, float, float], ...]
) -> FloatArray:
    """Relative traffic level (peak about 1) at minute starts ``t`` for a caller in UTC offset ``tz``."""
    local = t + tz * 3600.0
    hour = (local % 86400.0) / 3600.0
    weekend = (np.floor(local / 86400.0).astype(np.int64) + 3) % 7 >= 5
    if pattern == "business":
        up = 1.0 / (1.0 + np.exp(-(hour - 8.5) * 1.8))
        down = 1.0 / (1.0 + np.exp((hour - 17.5) * 1.4))
        lunch = 1.0 - 0.25 * np.exp(-(((hour - 12.5) / 0.6) ** 2))
        p = 0.03 + 0.97 * up * down * lunch
        return np.asarray(np.where(weekend, 0.02 + 0.1 * p, p), dtype=np.float64)
    if pattern == "batch":
        p = 0.07 + 0.03 * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
        for h0, length, level in jobs:
            p = p + level * (((hour - h0) % 24.0) < length)
        return np.asarray(p, dtype=np.float64)
    p = 0.6 + 0.4 * np.cos(2 * np.pi * (hour - 14.0) / 24.0)
    return np.asarray(np.where(weekend, 0.85 * p, p), dtype=np.float64)


def _service_order(rng: Generator) -> list[str]:
    names = [str(n) for n in rng.permutation(list(_SERVICES))]
    for want, pos in (("business", 0), ("always", 1), ("batch", 2)):
        first = next(n for n in names if _SERVICES[n] == want)
        names.remove(first)
        names.insert(pos, first)
    return names


def _build_org(w: _World, n_keys: int) -> None:
    names = _service_order(w.rng)
    count, i = 0, 0
    while count < n_keys:
        base = names[i % len(names)]
        svc = _new_service(w, base if i < len(names) else f"{base}-{i // len(names) + 1}", _SERVICES[base])
        envs = ["production"] + [
            e for e, p in (("staging", 0.6), ("development", 0.35)) if w.rng.random() < p
        ]
        for env in envs[: n_keys - count]:
            _new_key(w, svc, env)
        count += min(len(envs), n_keys - count)
        i += 1
    _add_people(w)
    _add_aws_integrations(w)


def _new_service(w: _World, name: str, pattern: str) -> _Service:
    rng = w.rng
    region = _weighted(rng, _REGION_WEIGHTS)
    regions = {region: 1.0}
    if region in _SECONDARY and rng.random() < 0.2:
        share = float(rng.uniform(0.15, 0.3))
        regions = {region: 1.0 - share, _SECONDARY[region]: share}
    jobs = tuple(
        (round(float(rng.uniform(0, 5)) * 4) / 4, float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.6, 1.0)))
        for _ in range(int(rng.integers(1, 3)) if pattern == "batch" else 0)
    )
    n_roles = int(rng.choice([1, 2, 3], p=[0.45, 0.4, 0.15]))
    suffixes = rng.choice(_ROLE_SUFFIXES[:5], size=n_roles, replace=False)
    shares = rng.dirichlet(np.full(n_roles, 2.0))
    styles = rng.choice(["plain", "ec2", "ecs"], size=n_roles, p=[0.5, 0.3, 0.2])
    roles = [(str(s), str(st), float(sh)) for s, st, sh in zip(suffixes, styles, shares, strict=True)]
    first = int(rng.integers(len(_SDK_UAS)))
    uas = [w.log.intern("ua", _SDK_UAS[first])]
    if rng.random() < 0.35:
        uas.append(w.log.intern("ua", _SDK_UAS[(first + 1) % len(_SDK_UAS)]))
    ops = dict(_APP_OPS[pattern])
    for extra in ("ReEncrypt", "GenerateDataKeyWithoutPlaintext"):
        if rng.random() < 0.3:
            ops[extra] = float(rng.uniform(0.005, 0.03))
    svc = _Service(name, pattern, region, regions, jobs, roles, uas, ops)
    w.services.append(svc)
    return svc


def _service_addrs(w: _World, svc: _Service, account: str) -> tuple[list[int], FloatArray]:
    """NAT addresses of a service in one account, in each of its regions, weighted by region share."""
    if account not in svc.addrs:
        addrs: list[int] = []
        weights: list[float] = []
        for region, share in svc.regions.items():
            hosts = _aws_addrs(w, region, int(w.rng.integers(2, 6)))
            addrs += hosts
            weights += [share / len(hosts)] * len(hosts)
        svc.addrs[account] = addrs
        svc.addr_w[account] = np.asarray(weights, dtype=np.float64) / sum(weights)
    return svc.addrs[account], svc.addr_w[account]


def _role_pool(w: _World, svc: _Service, account: str, suffix: str, style: str) -> IntArray:
    """Principal indices per day; session-style roles rotate some session names every day."""
    if (account, suffix) in svc.pools:
        return svc.pools[(account, suffix)]
    role = f"{svc.name}-{suffix}"
    if style == "plain":
        idx = w.log.intern("principal", f"arn:aws:iam::{account}:role/{role}")
        pool = np.full((w.clock.days, 1), idx, dtype=np.int64)
    else:
        size = int(w.rng.integers(2, 6))
        pool = np.zeros((w.clock.days, size), dtype=np.int64)
        for d in range(w.clock.days):
            for j in range(size):
                if d == 0 or w.rng.random() < 0.3:
                    raw = w.rng.bytes(16).hex()
                    session = f"i-0{raw[:16]}" if style == "ec2" else raw
                    arn = f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
                    pool[d, j] = w.log.intern("principal", arn)
                else:
                    pool[d, j] = pool[d - 1, j]
    svc.pools[(account, suffix)] = pool
    return pool


def _new_key(w: _World, svc: _Service, env: str) -> None:
    rng, clock = w.rng, w.clock
    account = w.accounts[env]
    token = _ENV_TOKEN[env]
    alias = f"alias/{svc.name}-{token}"
    if env == "production":
        cls, lo, hi = ("restricted" if svc.name.split("-")[0] in _RESTRICTED else "confidential"), 5.0, 40.0
    else:
        cls = "internal" if env == "staging" or rng.random() < 0.7 else "public"
        lo, hi = (0.3, 3.0) if env == "staging" else (0.05, 0.8)
    pattern = svc.pattern if env == "production" else "business"
    tz = _REGIONS[svc.region][3]
    key_id = f"arn:aws:kms:{svc.region}:{account}:key/{_uuid4s(rng, 1)[0]}"
    key = _Key(key_id, alias, svc.region, svc.name, env, pattern, tz, cls)
    peak = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    day_noise = rng.lognormal(0.0, 0.08, clock.days + 1)[np.arange(clock.minutes) // 1440]
    hour_noise = rng.lognormal(0.0, 0.15, clock.minutes // 60 + 1)[np.arange(clock.minutes) // 60]
    base = peak * _profile(pattern, clock.t, tz, svc.jobs) * day_noise * hour_noise
    k = len(w.log.keys)
    w.log.keys.append(key)
    svc.keys.append(k)
    addrs, addr_w = _service_addrs(w, svc, account)
    key.rate = np.zeros(clock.minutes)
    for suffix, style, share in svc.roles:
        pool = _role_pool(w, svc, account, suffix, style)
        rate = base * share * rng.gamma(10.0, 0.1, clock.minutes)
        p_denied, p_error = float(rng.uniform(0.001, 0.004)), float(rng.uniform(0.0003, 0.001))
        stream = _Stream(k, "app", svc.name, pool, addrs, addr_w, svc.uas, svc.ops, rate, p_denied, p_error)
        _add_stream(w, stream)


def _add_stream(w: _World, stream: _Stream) -> None:
    w.streams.append(stream)
    key = w.log.keys[stream.key]
    key.rate = key.rate + stream.rate


def _new_human(w: _World, name: str, office: str, admin: bool) -> _Human:
    if office not in w.office_addrs:
        w.office_addrs[office] = _isp_addrs(w, office, int(w.rng.integers(2, 5)))
    home = _isp_addrs(w, office, 1)
    principal = w.log.intern("principal", f"arn:aws:iam::{w.accounts['production']}:user/{name}")
    picks = w.rng.choice(len(_HUMAN_UAS), size=2, replace=False)
    uas = [w.log.intern("ua", _HUMAN_UAS[int(i)]) for i in picks]
    human = _Human(name, principal, office, [*w.office_addrs[office], *home], uas, admin)
    w.humans.append(human)
    return human


def _add_people(w: _World) -> None:
    countries = {_REGIONS[s.region][0] for s in w.services} | {"US"}
    for office, name in _ADMINS.items():
        if _OFFICES[office][0] in countries:
            _new_human(w, name, office, admin=True)
    free = list(_HUMANS)
    for k, key in enumerate(w.log.keys):
        # People use every business-hours production key, and a few others now and then.
        if key.env != "production" or (key.pattern != "business" and w.rng.random() >= 0.2):
            continue
        office = _OFFICE_OF[_REGIONS[key.region][0]]
        for _ in range(int(w.rng.integers(1, 3))):
            local = [h for h in w.humans if h.office == office and not h.admin]
            if local and (not free or w.rng.random() < 0.5):
                human = _pick(w.rng, local)
            elif free:
                human = _new_human(w, free.pop(0), office, admin=False)
            else:
                human = _pick(w.rng, [h for h in w.humans if not h.admin])
            _add_human_stream(w, human, k)


def _add_human_stream(w: _World, human: _Human, k: int) -> None:
    rng, clock = w.rng, w.clock
    tz = _OFFICES[human.office][3]
    peak = float(rng.uniform(0.1, 0.6))
    rate = peak * _profile("business", clock.t, tz, ()) * rng.gamma(4.0, 0.25, clock.minutes)
    n_office = len(human.addrs) - 1
    addr_w = np.asarray([0.85 / n_office] * n_office + [0.15], dtype=np.float64)
    pool = np.full((clock.days, 1), human.principal, dtype=np.int64)
    stream = _Stream(
        k, "human", human.name, pool, human.addrs, addr_w, human.uas, _HUMAN_OPS, rate, 0.01, 0.001
    )
    _add_stream(w, stream)


def _add_aws_integrations(w: _World) -> None:
    rng, clock = w.rng, w.clock
    for k, key in enumerate(list(w.log.keys)):
        if key.env != "production" or rng.random() >= 0.3:
            continue
        host = _pick(rng, list(_AWS_SERVICES))
        addr = w.log.add_addr(_Addr(host, "", None, None))
        pool = np.full((clock.days, 1), w.log.intern("principal", host), dtype=np.int64)
        peak = float(rng.uniform(0.2, 1.5))
        rate = peak * _profile("always", clock.t, key.tz, ()) * rng.gamma(10.0, 0.1, clock.minutes)
        ua = [w.log.intern("ua", host)]
        ones = np.ones(1, dtype=np.float64)
        _add_stream(
            w, _Stream(k, "aws", host, pool, [addr], ones, ua, _AWS_SERVICES[host], rate, 0.0005, 0.0)
        )


# ---------------------------------------------------------------- baseline traffic


def _emit_baseline(w: _World) -> None:
    for stream in w.streams:
        _emit_stream(w, stream)
    for key in w.log.keys:
        key.mean = max(float(key.rate[: w.clock.test_min].mean()), 0.5)
    _emit_rotations(w)
    _emit_admin_sessions(w)
    _emit_misconfigured(w)
    cut = w.clock.start + 60.0 * w.clock.test_min
    w.history_uas = {int(u) for c in w.log.chunks for u in np.unique(c[5][c[0] < cut])}


def _outcomes(rng: Generator, n: int, p_denied: float, p_error: float) -> IntArray:
    u = rng.random(n)
    return np.where(u < p_denied, 1, np.where(u < p_denied + p_error, 2, 0)).astype(np.int64)


def _choice(rng: Generator, items: Sequence[int], weights: Sequence[float] | FloatArray, n: int) -> IntArray:
    p = np.asarray(weights, dtype=np.float64)
    return np.asarray(items, dtype=np.int64)[rng.choice(len(items), size=n, p=p / p.sum())]


def _ops(w: _World, ops: dict[str, float], n: int) -> IntArray:
    return _choice(w.rng, [w.log.intern("op", o) for o in ops], list(ops.values()), n)


def _emit_stream(w: _World, s: _Stream) -> None:
    rng, clock = w.rng, w.clock
    counts = rng.poisson(s.rate)
    minute = np.repeat(np.arange(clock.minutes), counts)
    n = len(minute)
    ts = clock.start + (minute + rng.random(n)) * 60.0
    principal = s.pools[minute // 1440, rng.integers(0, s.pools.shape[1], n)]
    ua_w = np.asarray([0.8] + [0.2 / (len(s.uas) - 1)] * (len(s.uas) - 1)) if len(s.uas) > 1 else [1.0]
    addr = _choice(rng, s.addrs, s.addr_w, n)
    ua = _choice(rng, s.uas, ua_w, n)
    outcome = _outcomes(rng, n, s.p_denied, s.p_error)
    w.log.add(ts, s.key, _ops(w, s.ops, n), principal, addr, ua, outcome=outcome)
    seen, freq = np.unique(principal[minute < clock.test_min], return_counts=True)
    s.seen = [int(p) for p in seen[np.argsort(-freq, kind="stable")]]


def _seq(
    w: _World,
    t0: float,
    key: int,
    ops: Sequence[str],
    who: tuple[int, int, int],
    *,
    gap: tuple[float, float] = (2.0, 30.0),
    outcome: int = 0,
    tag: int = -1,
    keep: int | None = None,
) -> float:
    """Emit ``ops`` one after another from ``t0``, a few seconds apart; return the last time.

    With ``keep``, only the last ``keep`` operations are issued, from ``t0`` on, after the same draws.
    """
    gaps = w.rng.uniform(gap[0], gap[1], size=len(ops))
    gaps[0] = 0.0
    ts = t0 + np.cumsum(gaps)
    if keep is not None:
        ts, ops = ts[:keep], ops[len(ops) - keep :]
    op = np.asarray([w.log.intern("op", o) for o in ops], dtype=np.int64)
    w.log.add(ts, key, op, who[0], who[1], who[2], outcome=outcome, tag=tag)
    return float(ts[-1])


def _emit_rotations(w: _World) -> None:
    """A rotation Lambda visits every production key daily at 03:00 UTC."""
    prod = w.accounts["production"]
    who = w.log.intern("principal", f"arn:aws:sts::{prod}:assumed-role/kms-key-rotation/kms-key-rotation")
    addrs = _aws_addrs(w, "us-east-1", 4)
    ua = w.log.intern("ua", _LAMBDA_UA)
    end = w.clock.start + 60.0 * w.clock.minutes
    targets = [k for k, key in enumerate(w.log.keys) if key.env == "production"]
    for day in range(w.clock.days):
        t = w.clock.start + day * 86400.0 + 3 * 3600.0 + float(w.rng.uniform(0, 20))
        addr = _pick(w.rng, addrs)
        for k in targets:
            verb = (
                "RotateKeyOnDemand" if w.log.keys[k].classification == "restricted" else "EnableKeyRotation"
            )
            if t < end:
                t = _seq(
                    w, t, k, ("DescribeKey", "GetKeyRotationStatus", verb), (who, addr, ua), gap=(0.2, 1.5)
                )
            t += float(w.rng.uniform(0.5, 3.0))


def _emit_admin_sessions(w: _World) -> None:
    """Admins read and occasionally tag or re-policy keys of services in their country, on workdays."""
    clock, rng = w.clock, w.rng
    for human in (h for h in w.humans if h.admin):
        country, _, _, tz, _ = _OFFICES[human.office]
        keys = [k for k, key in enumerate(w.log.keys) if _REGIONS[key.region][0] == country]
        if human.name == "alice":
            keys = keys or list(range(len(w.log.keys)))
        first_day = int(clock.start // 86400.0)
        for day in range(first_day, first_day + clock.days + 1):
            midnight = day * 86400.0 - tz * 3600.0
            if not keys or (day + 3) % 7 >= 5:  # the Unix epoch fell on a Thursday
                continue
            for _ in range(int(rng.poisson(2.0))):
                t = midnight + float(rng.uniform(9.5, 17.5)) * 3600.0
                if not clock.start <= t < clock.start + 60.0 * (clock.minutes - 10):
                    continue
                ops = [str(o) for o in rng.choice(_ADMIN_READS, size=int(rng.integers(2, 6)))]
                ops += ["TagResource"] * (rng.random() < 0.5) + ["PutKeyPolicy"] * (rng.random() < 0.2)
                who = (human.principal, _pick(rng, human.addrs), _pick(rng, human.uas))
                _seq(w, t, _pick(rng, keys), ops, who, gap=(3.0, 60.0))


def _emit_misconfigured(w: _World) -> None:
    """Now and then a known app calls a key of another environment and gets a short run of denials."""
    rng, clock = w.rng, w.clock
    apps = [s for s in w.streams if s.kind == "app"]
    for _ in range(int(rng.poisson(1.2 * clock.minutes / 1440))):
        s = _pick(rng, apps)
        svc = next(v for v in w.services if v.name == s.owner)
        others = [k for k in svc.keys if k != s.key] or [k for k in range(len(w.log.keys)) if k != s.key]
        t = clock.start + float(rng.uniform(0, clock.minutes - 5)) * 60.0
        n = int(rng.integers(3, 9))
        who = (int(s.pools[int((t - clock.start) // 86400), 0]), s.addrs[0], s.uas[0])
        _seq(w, t, _pick(rng, others), ["Decrypt"] * n, who, gap=(2.0, 15.0), outcome=1)


# ---------------------------------------------------------------- scenarios


def _inject(w: _World, per_scenario: int) -> None:
    # Benign surprises first, so attacks prefer other keys and their label windows stay apart.
    for name in (*BENIGN, *ATTACKS):
        for i in range(per_scenario):
            w.instances.append(_SCENARIOS[name](w, i, len(w.instances)))


def _choose_key(w: _World, pred: Callable[[_Key], bool]) -> int:
    """A key of the organisation matching ``pred``, preferring keys no scenario has used yet."""
    org = [k for k, key in enumerate(w.log.keys) if key.env]
    cands = [k for k in org if pred(w.log.keys[k])] or org
    fresh = [k for k in cands if k not in w.used_keys]
    if not fresh:
        load = {k: sum(b - a for a, b in w.busy.get(k, [])) for k in cands}
        fresh = [k for k in cands if load[k] == min(load.values())]
    k = int(_pick(w.rng, fresh))
    w.used_keys.add(k)
    return k


def _main_stream(w: _World, k: int) -> _Stream:
    return max((s for s in w.streams if s.key == k and s.kind == "app"), key=lambda s: float(s.rate.sum()))


def _known(s: _Stream) -> int:
    return s.seen[0] if s.seen else int(s.pools[0, 0])


def _main_addr(s: _Stream) -> int:
    return s.addrs[int(np.argmax(s.addr_w))]


def _name(w: _World, principal: int) -> str:
    return w.log.names("principal")[principal]


def _phase(i: int) -> str:
    return "day" if i % 2 == 0 else "night"


def _when(w: _World, length: int, tz: float, phase: str, keys: Sequence[int]) -> int:
    """A start minute in the test span, at local ``phase`` time, clear of other scenarios on ``keys``."""
    clock = w.clock
    lo = clock.test_min + 5
    cand = np.arange(lo, max(lo + 1, clock.minutes - length - 10))
    hour = ((clock.start + 60.0 * cand + tz * 3600.0) % 86400.0) / 3600.0
    mask = (hour >= 9) & (hour < 17) if phase == "day" else (hour < 5) | (hour >= 22)
    cand = cand[mask] if mask.any() else cand
    for _ in range(50):
        m = int(_pick(w.rng, cand.tolist()))
        if all(m + length <= a or m >= b for k in keys for a, b in w.busy.get(k, [])):
            break
    for k in keys:
        w.busy.setdefault(k, []).append((m, m + length))
    return m


def _burst(w: _World, tag: int, k: int, m0: int, rate: FloatArray, who: tuple[int, list[int], list[int]],
           ops: dict[str, float], outcome: int = 0, *, share: float = 1.0, must: str | None = None,
           ) -> None:  # fmt: skip
    """Poisson traffic at ``rate`` per minute from minute ``m0`` by principal ``who[0]``.

    A ``share`` below 1 keeps that part of the events (see :func:`_thin`), after the same random draws;
    ``must`` names an operation the kept events still include if the burst had one.
    """
    rng, clock = w.rng, w.clock
    rate = rate[: max(1, clock.minutes - m0)]
    counts = rng.poisson(rate)
    if counts.sum() == 0:
        counts[int(np.argmax(rate))] = 1
    minute = m0 + np.repeat(np.arange(len(rate)), counts)
    n = len(minute)
    # Attacks do not start on a minute boundary: shift the whole burst by a random part of a minute.
    ts = clock.start + (minute + rng.random(n) + rng.random()) * 60.0
    keep = ts < clock.start + 60.0 * clock.minutes
    ts, n = ts[keep], int(keep.sum())
    addr = _choice(rng, who[1], np.ones(len(who[1])), n)
    ua = _choice(rng, who[2], np.ones(len(who[2])), n)
    op = _ops(w, ops, n)
    if share < 1.0:
        rows = _thin(ts, share, op, None if must is None else w.log.intern("op", must))
        ts, op, addr, ua = ts[rows], op[rows], addr[rows], ua[rows]
    w.log.add(ts, k, op, who[0], addr, ua, outcome=outcome, tag=tag)


def _thin(ts: FloatArray, share: float, op: IntArray, must: int | None) -> IntArray:
    """Rows of an evenly spaced ``share`` of the events (at least one, the first always), in row order.

    If ``must`` (an op index) occurs among the events but not among those kept, its first event is added.
    """
    n = len(ts)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(ts, kind="stable")
    count = _scaled(n, share)
    picks = order[np.floor(np.linspace(0, n - 1, count) + 0.5).astype(np.int64)]
    if must is not None and not (op[picks] == must).any():
        hits = np.flatnonzero(op[order] == must)
        if len(hits):
            picks = np.append(picks, order[hits[0]])
    return np.sort(picks)


def _scaled(count: int, strength: float, least: int = 1) -> int:
    """``count`` scaled by ``strength``: ``max(least, round(count * strength))``, at most ``count``."""
    return min(count, max(least, round(count * strength)))


def _toward_normal(multiplier: float, strength: float) -> float:
    """A rate ``multiplier`` (times the normal rate) moved toward 1 by ``strength``."""
    return 1.0 + (multiplier - 1.0) * strength


def _new_role(w: _World, key: _Key) -> int:
    svc = next(s for s in w.services if s.name == key.service)
    taken = {r[0] for r in svc.roles}
    suffix = _pick(w.rng, [s for s in _ROLE_SUFFIXES if s not in taken] or [f"app{len(taken)}"])
    svc.roles.append((suffix, "plain", 0.0))
    arn = f"arn:aws:iam::{w.accounts[key.env]}:role/{svc.name}-{suffix}"
    return w.log.intern("principal", arn)


def _newcomer(w: _World) -> int:
    taken = w.used_people | {h.name for h in w.humans}
    free = [n for n in (*_NEWCOMERS, *_HUMANS) if n not in taken]
    name = free[0] if free else f"{_pick(w.rng, _NEWCOMERS)}.{len(taken)}"
    w.used_people.add(name)
    return w.log.intern("principal", f"arn:aws:iam::{w.accounts['production']}:user/{name}")


def _human_uas(w: _World) -> list[int]:
    return sorted({u for h in w.humans for u in h.uas})


def _agents(w: _World, preferred: Sequence[int]) -> list[int]:
    """User agents from ``preferred`` that history already shows, so injected events blend in."""
    seen = [u for u in preferred if u in w.history_uas]
    if seen:
        return seen
    human = set(_human_uas(w))
    same_kind = sorted(u for u in w.history_uas if (u in human) == (preferred[0] in human))
    return (same_kind or sorted(w.history_uas))[:1]


def _km(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = (math.radians(v) for v in (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 12742.0 * math.asin(math.sqrt(h))


def _human_streams(w: _World, pred: Callable[[_Stream], bool]) -> _Stream:
    """A person's stream matching ``pred``, preferring people no scenario has used yet."""
    people = [s for s in w.streams if s.kind == "human"]
    cands = [s for s in people if pred(s)] or people
    s: _Stream = _pick(w.rng, [s for s in cands if s.owner not in w.used_people] or cands)
    w.used_people.add(s.owner)
    return s


def _exfiltration(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the rate multiplier."""
    k = _choose_key(w, lambda key: key.env == "production")
    key, s = w.log.keys[k], _main_stream(w, k)
    length, full = int(w.rng.integers(5, 21)), float(w.rng.uniform(20, 60))
    mult = _toward_normal(full, w.strength)
    m0 = _when(w, length, key.tz, _phase(i), [k])
    addrs = _aws_addrs(w, key.region, 1) if i % 2 else [_main_addr(s)]
    ops = {"Decrypt": 0.93, "GenerateDataKey": 0.07}
    who = (_known(s), addrs, _agents(w, s.uas)[:1])
    _burst(w, tag, k, m0, np.full(length, full * key.mean), who, ops, share=mult / full)
    where = "a new address in its home region" if i % 2 else "one of its usual addresses"
    text = (
        f"Credentials of {_name(w, _known(s))} decrypted with {key.alias} at about {mult:.0f} times the "
        f"key's normal rate for {length} minutes from {where}."
    )
    return _Inst("exfiltration_spike", "attack", [k], _name(w, _known(s)), text)


def _foreign(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the number of calls from the foreign place."""
    k = _choose_key(w, lambda key: key.env == "production")
    key, s = w.log.keys[k], _main_stream(w, k)
    place = _pick(w.rng, list(_FOREIGN))
    country, lat, lon, blocks = _FOREIGN[place]
    addrs = _new_addrs(w, blocks, (country, lat, lon), int(w.rng.integers(1, 3)))
    length = int(w.rng.integers(10, 41))
    m0 = _when(w, length, key.tz, _phase(i), [k])
    rate = np.full(length, float(w.rng.uniform(0.2, 1.0)) * key.mean)
    _burst(w, tag, k, m0, rate, (_known(s), addrs, _agents(w, s.uas)[:1]), s.ops, share=w.strength)
    text = (
        f"Credentials of {_name(w, _known(s))} used {key.alias} for {length} minutes from {place} "
        f"({country}), a country the organisation never operates from."
    )
    return _Inst("foreign_geography", "attack", [k], _name(w, _known(s)), text)


def _impossible_travel(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the number of far-away calls; the call at home before them stays."""
    s = _human_streams(w, lambda s: True)
    human = next(h for h in w.humans if h.name == s.owner)
    _, lat, lon, tz, _ = _OFFICES[human.office]
    far_foreign = [p for p, v in _FOREIGN.items() if _km((lat, lon), (v[1], v[2])) > 3000]
    far_org = [o for o, v in _OFFICES.items() if _km((lat, lon), (v[1], v[2])) > 3000]
    if (i % 2 == 0 and far_foreign) or not far_org:
        place = _pick(w.rng, far_foreign)
        c2, lat2, lon2, blocks = _FOREIGN[place]
        far = _new_addrs(w, blocks, (c2, lat2, lon2), 1)
    else:
        place = _pick(w.rng, far_org)
        far = _isp_addrs(w, place, 1)
        lat2, lon2 = _OFFICES[place][1], _OFFICES[place][2]
    gap, length = int(w.rng.integers(4, 15)), int(w.rng.integers(3, 9))
    m0 = _when(w, 3 + gap + length, tz, "day", [s.key])
    # The real user at home is background (tag -1): the misuse, and its label, start far away.
    _burst(
        w,
        -1,
        s.key,
        m0,
        np.full(3, 1.5),
        (human.principal, human.addrs[:1], _agents(w, human.uas)[:1]),
        _HUMAN_OPS,
    )
    rate = np.full(length, float(w.rng.uniform(1.0, 3.0)))
    who = (human.principal, far, _agents(w, human.uas)[:1])
    _burst(w, tag, s.key, m0 + 3 + gap, rate, who, _HUMAN_OPS, share=w.strength)
    text = (
        f"{_name(w, human.principal)} used {w.log.keys[s.key].alias} from {human.office} and about {gap} "
        f"minutes later from {place}, {_km((lat, lon), (lat2, lon2)):.0f} km away."
    )
    return _Inst("impossible_travel", "attack", [s.key], _name(w, human.principal), text)


def _destructive(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the number of operations issued; the last, destructive one always stays."""
    k = _choose_key(w, lambda key: key.env == "production")
    key, s = w.log.keys[k], _main_stream(w, k)
    variants = (
        ("DescribeKey", "DisableKey"),
        ("DescribeKey", "GetKeyPolicy", "PutKeyPolicy", "ScheduleKeyDeletion"),
        ("GetKeyPolicy", "PutKeyPolicy", "DisableKey"),
    )
    full = variants[i % 3]
    ops = full[len(full) - _scaled(len(full), w.strength) :]
    if i % 2 and any(x.kind == "human" for x in w.streams):
        owner = _human_streams(w, lambda s: True).owner
        human = next(h for h in w.humans if h.name == owner)
        who = (human.principal, human.addrs[0], _agents(w, human.uas)[0])
    else:
        who = (_known(s), _main_addr(s), _agents(w, s.uas)[0])
    m0 = _when(w, 5, key.tz, _phase(i), [k])
    t0 = w.clock.start + 60.0 * m0 + float(w.rng.uniform(0, 60))
    _seq(w, t0, k, full, who, gap=(5.0, 60.0), tag=tag, keep=len(ops))
    text = f"{_name(w, who[0])}, which never administers keys, ran {', '.join(ops)} on {key.alias}."
    return _Inst("destructive_operations", "attack", [k], _name(w, who[0]), text)


def _denied_probing(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the number of keys probed (at least two; the first probed stay), not their calls."""
    rng = w.rng
    if i % 2 == 0:
        office = _pick(rng, list(w.office_addrs))
        who = (
            _newcomer(w),
            _isp_addrs(w, office, 1)[0],
            _agents(w, rng.permutation(_human_uas(w)).tolist())[0],
        )
        own: set[int] = set()
    else:
        s = _main_stream(w, _choose_key(w, lambda key: key.env == "production"))
        who = (_known(s), _main_addr(s), _agents(w, s.uas)[0])
        own = {x.key for x in w.streams if who[0] in x.pools}
    targets = [k for k, key in enumerate(w.log.keys) if key.env and k not in own]
    keys = rng.choice(targets, size=min(len(targets), int(rng.integers(8, 21))), replace=False)
    calls = np.repeat(keys, rng.integers(1, 4, size=len(keys)))
    length = int(rng.integers(2, 6))
    m0 = _when(w, length, w.log.keys[int(keys[0])].tz, _phase(i), [])
    ts = w.clock.start + 60.0 * m0 + np.sort(rng.uniform(0, 60.0 * length, size=len(calls)))
    ops = _ops(
        w, {"Decrypt": 0.5, "DescribeKey": 0.25, "GenerateDataKey": 0.15, "GetKeyPolicy": 0.1}, len(calls)
    )
    calls = rng.permutation(calls)
    _, first = np.unique(calls, return_index=True)
    keys = calls[np.sort(first)[: _scaled(len(keys), w.strength, least=2)]]
    probed = np.isin(calls, keys)
    w.log.add(ts[probed], calls[probed], ops[probed], who[0], who[1], who[2], outcome=1, tag=tag)
    text = f"{_name(w, who[0])} was refused on {len(keys)} different keys within {length} minutes."
    return _Inst("denied_probing", "attack", sorted(int(k) for k in keys), _name(w, who[0]), text)


def _low_and_slow(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the peak level: the key's multiplier ``1 + level`` becomes ``1 + level * strength``."""
    k = _choose_key(w, lambda key: key.env == "production" and key.pattern == "always")
    key, s = w.log.keys[k], _main_stream(w, k)
    length, full = int(w.rng.integers(60, 181)), float(w.rng.uniform(0.8, 1.6))
    level = full * w.strength  # _toward_normal(1 + full, strength) - 1
    m0 = _when(w, length, key.tz, _phase(i), [k])
    base = key.rate[m0 : m0 + length]
    rate = full * base * np.arange(1, len(base) + 1) / len(base)
    if i % 2 == 0:
        who, how = (_new_role(w, key), [_main_addr(s)], _agents(w, s.uas)[:1]), "a role never seen before"
    else:
        who, how = (_known(s), _aws_addrs(w, key.region, 1), _agents(w, s.uas)[:1]), "a new address prefix"
    _burst(w, tag, k, m0, rate, who, {"Decrypt": 1.0}, share=w.strength)
    text = (
        f"Decrypt calls on {key.alias} by {_name(w, who[0])} ({how}) rose slowly over {length} minutes "
        f"to about {level:.1f} times the key's usual rate on top of normal traffic."
    )
    return _Inst("low_and_slow", "attack", [k], _name(w, who[0]), text)


def _new_principal(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the number of calls by the new principal."""
    k = _choose_key(w, lambda key: key.env == "production")
    key, s = w.log.keys[k], _main_stream(w, k)
    length = int(w.rng.integers(10, 41))
    m0 = _when(w, length, key.tz, _phase(i), [k])
    if i % 2 == 0:
        rate = np.full(length, float(w.rng.uniform(0.2, 0.8)) * key.mean)
        who = (p := _new_role(w, key), [_main_addr(s)], _agents(w, s.uas)[:1])
        _burst(w, tag, k, m0, rate, who, s.ops, share=w.strength)
    else:
        office = _OFFICE_OF[_REGIONS[key.region][0]]
        addrs = w.office_addrs.get(office) or _isp_addrs(w, office, 2)
        rate = np.full(length, float(w.rng.uniform(0.3, 1.5)))
        who = (p := _newcomer(w), addrs, _agents(w, _human_uas(w))[:1])
        _burst(w, tag, k, m0, rate, who, _HUMAN_OPS, share=w.strength)
    text = f"{_name(w, p)}, never seen before, used {key.alias} for data operations for {length} minutes."
    return _Inst("new_principal", "attack", [k], _name(w, p), text)


def _off_hours(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the number of night-time calls."""
    s = _human_streams(w, lambda s: w.log.keys[s.key].pattern == "business")
    human = next(h for h in w.humans if h.name == s.owner)
    length = int(w.rng.integers(10, 41))
    m0 = _when(w, length, _OFFICES[human.office][3], "night", [s.key])
    addrs = human.addrs[-1:] if i % 2 == 0 else _isp_addrs(w, human.office, 1)
    rate = np.full(length, float(w.rng.uniform(0.3, 1.5)))
    who = (human.principal, addrs, _agents(w, human.uas)[:1])
    _burst(w, tag, s.key, m0, rate, who, _HUMAN_OPS, share=w.strength)
    where = "a home connection they use" if i % 2 == 0 else "a new home connection"
    text = (
        f"{_name(w, human.principal)} used business-hours key {w.log.keys[s.key].alias} at night local "
        f"time for {length} minutes from {where}."
    )
    return _Inst("off_hours", "attack", [s.key], _name(w, human.principal), text)


def _ransom(w: _World, i: int, tag: int) -> _Inst:
    """Strength scales the re-encryption calls on both keys and the final ones (the destructive one stays)."""
    rng = w.rng
    k = _choose_key(w, lambda key: key.env == "production")
    key, s = w.log.keys[k], _main_stream(w, k)
    account = str(rng.integers(10**11, 10**12))
    ext = _Key(f"arn:aws:kms:{key.region}:{account}:key/{_uuid4s(rng, 1)[0]}", None, key.region)
    e = len(w.log.keys)
    w.log.keys.append(ext)
    length, total = int(rng.integers(3, 11)), float(rng.uniform(40, 200))
    m0 = _when(w, length + 6, key.tz, _phase(i), [k])
    addrs = _aws_addrs(w, key.region, 1) if i % 2 else [_main_addr(s)]
    who = (_known(s), addrs, _agents(w, s.uas)[:1])
    share = w.strength
    reencrypt = {"ReEncrypt": 0.75, "Decrypt": 0.25}
    _burst(w, tag, k, m0, np.full(length, 0.6 * total), who, reencrypt, share=share, must="ReEncrypt")
    encrypt = {"Encrypt": 0.5, "GenerateDataKeyWithoutPlaintext": 0.5}
    _burst(w, tag, e, m0, np.full(length, 0.4 * total), who, encrypt, share=share)
    final = ("DescribeKey", "ScheduleKeyDeletion") if i % 2 == 0 else ("GetKeyPolicy", "PutKeyPolicy")
    t = w.clock.start + 60.0 * (m0 + length) + float(rng.uniform(60, 300))
    last = (who[0], addrs[0], _agents(w, s.uas)[0])
    _seq(w, t, k, final, last, gap=(5.0, 40.0), tag=tag, keep=_scaled(len(final), share))
    text = (
        f"{_name(w, who[0])} re-encrypted data from {key.alias} under outside key {ext.key_id} for {length} "
        f"minutes, then ran {final[-1]} on {key.alias}."
    )
    return _Inst("ransom_reencryption", "attack", [k, e], _name(w, who[0]), text)


def _batch_surge(w: _World, i: int, tag: int) -> _Inst:
    k = _choose_key(w, lambda key: key.env == "production" and key.pattern in ("batch", "business"))
    key, s = w.log.keys[k], _main_stream(w, k)
    length, mult = int(w.rng.integers(30, 91)), float(w.rng.uniform(3, 6))
    m0 = _when(w, length, key.tz, "night" if i % 2 == 0 else "day", [k])
    _burst(
        w, tag, k, m0, np.full(length, (mult - 1) * key.mean), (_known(s), s.addrs, _agents(w, s.uas)), s.ops
    )
    text = (
        f"Month-end batch: {_name(w, _known(s))} used {key.alias} at about {mult:.1f} times its normal rate "
        f"for {length} minutes from its usual addresses."
    )
    return _Inst("batch_surge", "benign", [k], _name(w, _known(s)), text)


def _region_expansion(w: _World, i: int, tag: int) -> _Inst:
    k = _choose_key(w, lambda key: key.env == "production")
    key, s = w.log.keys[k], _main_stream(w, k)
    svc = next(v for v in w.services if v.name == key.service)
    region = _pick(w.rng, [r for r in _REGIONS if r not in svc.regions])
    span = w.clock.minutes - w.clock.test_min
    m0 = w.clock.test_min + int(w.rng.integers(span // 20 + 1, span // 2 + 2))
    w.busy.setdefault(k, []).append((m0, w.clock.minutes))
    rate = float(w.rng.uniform(0.2, 0.5)) * s.rate[m0:]
    addrs = _aws_addrs(w, region, int(w.rng.integers(2, 4)))
    _burst(w, tag, k, m0, rate, (_known(s), addrs, _agents(w, s.uas)), s.ops)
    text = (
        f"Service {svc.name} started calling {key.alias} from {region} ({_REGIONS[region][0]}) through new "
        "addresses, with its usual role."
    )
    return _Inst("region_expansion", "benign", [k], _name(w, _known(s)), text)


_SCENARIOS: dict[str, Callable[[_World, int, int], _Inst]] = {
    "exfiltration_spike": _exfiltration,
    "foreign_geography": _foreign,
    "impossible_travel": _impossible_travel,
    "destructive_operations": _destructive,
    "denied_probing": _denied_probing,
    "low_and_slow": _low_and_slow,
    "new_principal": _new_principal,
    "off_hours": _off_hours,
    "ransom_reencryption": _ransom,
    "batch_surge": _batch_surge,
    "region_expansion": _region_expansion,
}


# ---------------------------------------------------------------- assembly


def _finish(w: _World, args: dict[str, Any]) -> Simulation:
    cols = [np.concatenate([c[j] for c in w.log.chunks]) for j in range(8)]
    order = np.argsort(cols[0], kind="stable")
    ts, key, op, prin, addr, ua, outcome, tag = (c[order] for c in cols)
    n = len(ts)
    ids, requests = _uuid4s(w.rng, n), _uuid4s(w.rng, n)
    if len(set(ids) | set(requests)) != 2 * n:
        raise RuntimeError("event id collision; choose another seed")
    ops, prins, uas = w.log.names("op"), w.log.names("principal"), w.log.names("ua")
    keys, addrs = w.log.keys, w.log.addrs
    events = []
    for i, t, k, o, p, a, u, oc in zip(
        range(n), ts.tolist(), key.tolist(), op.tolist(), prin.tolist(), addr.tolist(), ua.tolist(),
        outcome.tolist(), strict=True,
    ):  # fmt: skip
        kk, ad = keys[k], addrs[a]
        events.append(
            Event(ids[i], t, kk.key_id, ops[o], prins[p], ad.ip, _OUTCOMES[oc], SOURCE, ad.country, ad.lat,
                  ad.lon, uas[u], kk.region, kk.alias, requests[i])
        )  # fmt: skip
    split = int(np.searchsorted(ts, w.clock.start + 60.0 * w.clock.test_min, side="left"))
    labels, members = _labels(w, args, ts, tag, ids, (split, n - split))
    return Simulation(events[:split], events[split:], labels, _catalog(w), members)


def _labels(
    w: _World, args: dict[str, Any], ts: FloatArray, tag: IntArray, ids: list[str], counts: tuple[int, int]
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    clock = w.clock
    org_keys = [k for k in w.log.keys if k.env]
    meta = {
        **args,
        "history_start": format_ts(clock.start),
        "test_start": format_ts(clock.start + 60.0 * clock.test_min),
        "test_end": format_ts(clock.start + 60.0 * clock.minutes),
        "key_count": len(org_keys),
        "events_history": counts[0],
        "events_test": counts[1],
        "generator": GENERATOR,
    }
    scenarios, members = [], {}
    seen: dict[str, int] = {}
    rank = {name: r for r, name in enumerate((*ATTACKS, *BENIGN))}
    for t in sorted(range(len(w.instances)), key=lambda t: rank[w.instances[t].scenario]):
        inst = w.instances[t]
        rows = np.flatnonzero(tag == t)
        seen[inst.scenario] = seen.get(inst.scenario, 0) + 1
        sid = f"{inst.scenario}-{seen[inst.scenario]}"
        members[sid] = [ids[int(r)] for r in rows]
        scenarios.append(
            {
                "id": sid,
                "scenario": inst.scenario,
                "kind": inst.kind,
                "key_ids": [w.log.keys[k].key_id for k in inst.keys],
                "principal": inst.principal,
                "start": format_ts(float(ts[rows[0]])),
                "end": format_ts(float(ts[rows[-1]])),
                "event_count": len(rows),
                "description": inst.description,
            }
        )
    return {"meta": meta, "scenarios": scenarios}, members


def _catalog(w: _World) -> dict[str, Any]:
    entries = [
        {
            "match": k.key_id,
            "environment": k.env,
            "classification": k.classification,
            "owner": f"{k.service}-team",
            "service": k.service,
        }
        for k in w.log.keys
        if k.env
    ]
    defaults = {"environment": "production", "classification": "confidential", "owner": "", "service": ""}
    return {"keys": entries, "defaults": defaults}
