"""The simulated organisation: its keys, services, people, automation and the traffic streams between them."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.random import Generator

from ._identities import Fixed, Identity, Person, Workload, assumed_role
from ._places import (
    ACCOUNTS,
    CI_RUNNERS,
    CONSOLE_AGENTS,
    OFFICES,
    OPERATION_MIXES,
    PARAMETER_NAMES,
    PEOPLE,
    PERSON_AGENTS,
    REGIONS,
    SDK_AGENTS,
    SECRET_NAMES,
    SERVICES,
    SSO_ROLES,
    Place,
    Region,
    ServiceTemplate,
)
from ._traffic import OP, Calendar, Tables, digest, hex_id

VOLUME = 1.15  # scales every service's rates: about 3 million calls for 120 keys over 9 days
ADMIN_ROLE = "kms-key-admin"
BACKUP_ROLE = "AWSBackupDefaultServiceRole"
EMAIL_DOMAIN = "keywatch-demo.example"
_COMPUTE_TIMING = {  # session refresh, host lifetime (seconds), replicas
    "eks": (3600.0, 86400.0, 3),
    "ecs": (21600.0, 43200.0, 2),
    "ec2": (21600.0, 3 * 86400.0, 2),
    "lambda": (1e12, 1800.0, 4),
    "actions": (1e12, 1200.0, 1),
}


@dataclass(slots=True)
class Key:
    """One KMS key of the catalog."""

    index: int
    key_id: str
    region: str
    account: str
    alias: str | None
    service: str
    environment: str
    classification: str
    purpose: str  # data | secrets | storage | signing | managed-secrets | escrow
    schedule: str
    created: float | None = None
    retired: float | None = None
    inventory: tuple[str, ...] = ()

    @property
    def place_region(self) -> Region:
        """The region the key lives in."""
        return REGIONS[self.region]


@dataclass(frozen=True, slots=True)
class Stream:
    """Calls of one identity on one key, following a weekly schedule with overdispersed counts.

    ``via`` names the AWS service the calls went through (its name is then the logged source
    address and agent, and ``resources`` the encryption-context objects).
    """

    origin: int
    identity: Identity
    key: int
    schedule: str
    utc_offset: float
    peak_rate: float
    dispersion: float
    mix: str
    operations: tuple[int, ...]
    weights: tuple[float, ...]
    resources: tuple[int, ...] = ()
    via: str | None = None
    named: bool = False
    console: bool = False
    denied: float = 0.0005
    error: float = 0.0004
    active_from: float = -math.inf
    active_to: float = math.inf


@dataclass(slots=True)
class World:
    """Everything the generator draws traffic from."""

    seed: int
    calendar: Calendar
    tables: Tables
    services: tuple[ServiceTemplate, ...]
    keys: list[Key]
    workloads: list[Workload]
    people: list[Person]
    streams: list[Stream]
    admin: Fixed
    managed: frozenset[int]
    backed_up: frozenset[int]
    lifecycle: dict[str, int] = field(default_factory=dict)

    def key_streams(self, key: int) -> list[Stream]:
        """Background streams calling a key."""
        return [stream for stream in self.streams if stream.key == key]

    def identity_keys(self, name: str) -> set[int]:
        """Keys an identity calls in the background."""
        return {stream.key for stream in self.streams if stream.identity.name == name}


def mix_codes(mix: str) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Operation codes and weights of a named mix."""
    table = OPERATION_MIXES[mix]
    return tuple(OP[name] for name in table), tuple(table.values())


def new_key_id(rng: Generator, region: str, account: str, *, multi_region: bool, bare: bool) -> str:
    """A key ARN (or a bare key id) with a random UUID or multi-Region ``mrk-`` id."""
    raw = uuid.UUID(bytes=rng.bytes(16), version=4)
    key = f"mrk-{raw.hex}" if multi_region else str(raw)
    return key if bare else f"arn:aws:kms:{region}:{account}:key/{key}"


def choose_services(keys: int) -> tuple[ServiceTemplate, ...]:
    """Services of a fleet of ``keys`` keys: about one per five keys, at least six."""
    count = min(len(SERVICES), max(6, round(keys / 5)))
    return SERVICES[:count]


def deal_keys(services: Sequence[ServiceTemplate], total: int) -> list[int]:
    """Keys per service, by weight (largest remainders), at least one each while keys last."""
    if total <= len(services):
        return [1 if index < total else 0 for index in range(len(services))]
    weights = np.array([service.weight for service in services])
    share = (total - len(services)) * weights / weights.sum()
    counts = np.floor(share).astype(int)
    for index in np.argsort(-(share - counts), kind="stable")[: total - len(services) - counts.sum()]:
        counts[index] += 1
    return [1 + int(count) for count in counts]


def build_keys(rng: Generator, services: Sequence[ServiceTemplate], total: int) -> list[Key]:
    """Keys of every service, one AWS-managed secrets key per account, and dormant escrow keys."""
    dormant = max(1, total // 40)
    accounts = sorted(
        {s.account for s in services if "secrets" in s.purposes and s.environment == "production"}
    )
    managed = accounts[: min(2, max(0, total - dormant - len(services)))]
    keys: list[Key] = []
    for service, count in zip(services, deal_keys(services, total - dormant - len(managed)), strict=True):
        for number in range(count):
            keys.append(_service_key(rng, service, number, len(keys)))
    for account in managed:
        keys.append(_managed_secrets_key(rng, services, account, len(keys)))
    for number in range(dormant):
        keys.append(_escrow_key(rng, services[number % len(services)], number, len(keys)))
    return keys


def _service_key(rng: Generator, service: ServiceTemplate, number: int, index: int) -> Key:
    """The ``number``-th key of a service: purposes and regions taken in turn."""
    purpose = service.purposes[number % len(service.purposes)]
    region = service.regions[number % len(service.regions)]
    account = ACCOUNTS[service.account]
    unnamed = digest(service.name, number, "alias") % 9 == 0
    return Key(
        index=index,
        key_id=new_key_id(
            rng,
            region,
            account,
            multi_region=len(service.regions) > 1 and number == 0,
            bare=service.environment != "production",
        ),
        region=region,
        account=account,
        alias=None if unnamed else f"alias/{service.name}/{purpose}-{number}",
        service=service.name,
        environment=service.environment,
        classification=service.classification,
        purpose=purpose,
        schedule=service.schedule,
    )


def _managed_secrets_key(
    rng: Generator, services: Sequence[ServiceTemplate], account: str, index: int
) -> Key:
    """The AWS-managed ``aws/secretsmanager`` key of an account, shared by its roles."""
    region = next(s.regions[0] for s in services if s.account == account)
    return Key(
        index=index,
        key_id=new_key_id(rng, region, ACCOUNTS[account], multi_region=False, bare=False),
        region=region,
        account=ACCOUNTS[account],
        alias="alias/aws/secretsmanager",
        service="secretsmanager",
        environment="production",
        classification="restricted",
        purpose="managed-secrets",
        schedule="always",
    )


def _escrow_key(rng: Generator, service: ServiceTemplate, number: int, index: int) -> Key:
    """A disaster-recovery key nobody uses: it has no history at all."""
    region = service.regions[-1]
    return Key(
        index=index,
        key_id=new_key_id(rng, region, ACCOUNTS[service.account], multi_region=False, bare=False),
        region=region,
        account=ACCOUNTS[service.account],
        alias=f"alias/dr/{service.name}-escrow-{number}",
        service=service.name,
        environment="production",
        classification="restricted",
        purpose="escrow",
        schedule="never",
    )


def fill_inventories(keys: Sequence[Key]) -> None:
    """Secrets and parameters protected by each secrets key (most are rarely read)."""
    for key in keys:
        if key.purpose not in ("secrets", "managed-secrets"):
            continue
        owner = key.service if key.purpose == "secrets" else "shared"
        secrets = [_secret_arn(key, owner, name, env) for name in SECRET_NAMES for env in ("", "-v2")]
        parameters = [
            f"arn:aws:ssm:{key.region}:{key.account}:parameter/{owner}/{name}" for name in PARAMETER_NAMES
        ]
        key.inventory = tuple(secrets + parameters)


def _secret_arn(key: Key, owner: str, name: str, suffix: str) -> str:
    tail = hex_id(6, key.key_id, name, suffix)
    return f"arn:aws:secretsmanager:{key.region}:{key.account}:secret:{owner}/{name}{suffix}-{tail}"


def build_workloads(
    rng: Generator, services: Sequence[ServiceTemplate], span: tuple[float, float]
) -> list[Workload]:
    """A workload per service, region and role."""
    workloads: list[Workload] = []
    for service in services:
        for region_name in service.regions:
            for suffix in service.roles:
                workloads.append(_workload(rng, service, REGIONS[region_name], suffix, span))
    return workloads


def _workload(
    rng: Generator, service: ServiceTemplate, region: Region, suffix: str, span: tuple[float, float]
) -> Workload:
    """One role of a service in one region: NAT or VPC-endpoint network, SDK upgraded for some."""
    session, host, replicas = _COMPUTE_TIMING[service.compute]
    salt = digest(service.name, suffix, region.name, int(rng.integers(1 << 30)))
    nat = service.compute in ("ec2", "lambda") or salt % 3 == 0
    subnet = f"10.{region.private_octet}.{salt % 200 + 16}"
    if service.compute == "actions":
        subnet = CI_RUNNERS.blocks[salt % len(CI_RUNNERS.blocks)]
    language = f"lambda-{service.language}" if service.compute == "lambda" else service.language
    upgrade = span[0] + (span[1] - span[0]) * rng.uniform(0.2, 0.8) if salt % 4 == 0 else math.inf
    return Workload(
        role=suffix if service.compute == "actions" else f"{service.name}-{suffix}",
        account=ACCOUNTS[service.account],
        service=service.name,
        compute=service.compute,
        region=region,
        replicas=replicas,
        session_seconds=session,
        host_seconds=host,
        nat_ips=tuple(_public_ip(region.public_blocks, salt, index) for index in range(2)) if nat else (),
        subnet=subnet,
        agents=SDK_AGENTS.get(language, SDK_AGENTS["python"]),
        upgrade_at=upgrade,
        salt=salt,
    )


def _public_ip(blocks: Sequence[str], salt: int, index: int) -> str:
    """A stable public address in one of a region's blocks."""
    mixed = digest(salt, "nat", index)
    return f"{blocks[mixed % len(blocks)]}.{(mixed >> 8) % 256}.{(mixed >> 16) % 254 + 1}"


def build_people(rng: Generator, services: Sequence[ServiceTemplate], keys: int) -> list[Person]:
    """Engineers of the service teams; two are key administrators, a quarter take on-call turns."""
    count = min(len(PEOPLE), max(8, keys // 4))
    offices = sorted({service.office for service in services})
    return [
        _person(rng, name, offices[index % len(offices)], index) for index, name in enumerate(PEOPLE[:count])
    ]


def _person_principal(name: str, index: int, admin: bool) -> str:
    """An SSO permission-set session for most, an IAM user for some."""
    if admin:
        role = f"AWSReservedSSO_KeyAdministrator_{hex_id(16, 'key-admin')}"
        return assumed_role(ACCOUNTS["security"], role, f"{name}@{EMAIL_DOMAIN}")
    if index % 5 == 3:
        return f"arn:aws:iam::{ACCOUNTS['platform']}:user/{name}"
    permission_set = SSO_ROLES[index % len(SSO_ROLES)]
    role = f"AWSReservedSSO_{permission_set}_{hex_id(16, permission_set)}"
    return assumed_role(ACCOUNTS["commerce" if index % 2 else "platform"], role, f"{name}@{EMAIL_DOMAIN}")


def _person(rng: Generator, name: str, office_name: str, index: int) -> Person:
    office = OFFICES[office_name]
    salt = digest(name, int(rng.integers(1 << 30)))
    admin = index in (1, 6)
    office_ips = tuple(f"{office.egress_block}.{salt % 8 + 16}.{number + 10}" for number in range(3))
    home = Place(
        office.place.country,
        round(office.place.lat + rng.uniform(-0.3, 0.3), 4),
        round(office.place.lon + rng.uniform(-0.3, 0.3), 4),
    )
    return Person(
        name=name,
        principal=_person_principal(name, index, admin),
        office=office,
        office_ips=office_ips,
        home_block=office.home_blocks[salt % len(office.home_blocks)],
        home_place=home,
        remote_share=float(rng.uniform(0.2, 0.6)),
        cli_agent=PERSON_AGENTS[salt % len(PERSON_AGENTS)],
        console_agent=CONSOLE_AGENTS[(salt >> 3) % len(CONSOLE_AGENTS)],
        on_call=index % 4 == 2,
        admin=admin,
        salt=salt,
    )


_DISPERSION = {"always": 6.0, "business": 3.0, "nightly": 2.0, "ci": 0.15, "flat": 2.0, "person": 0.12}


@dataclass(slots=True)
class _StreamMaker:
    """Collects the background streams of the world, numbering them."""

    rng: Generator
    tables: Tables
    templates: dict[str, ServiceTemplate]
    streams: list[Stream] = field(default_factory=list)

    def add(
        self,
        identity: Identity,
        key: Key,
        *,
        schedule: str,
        utc_offset: float,
        peak_rate: float,
        mix: str,
        resources: Sequence[str] = (),
        via: str | None = None,
        named: bool = False,
        console: bool = False,
        denied: float = 0.0005,
    ) -> None:
        """Append one stream; inactive before the key's creation and after its retirement."""
        operations, weights = mix_codes(mix)
        stream = Stream(
            origin=len(self.streams),
            identity=identity,
            key=key.index,
            schedule=schedule,
            utc_offset=utc_offset,
            peak_rate=peak_rate,
            dispersion=_DISPERSION[schedule],
            mix=mix,
            operations=operations,
            weights=weights,
            resources=tuple(self.tables.resource(arn) for arn in resources),
            via=via,
            named=named and key.alias is not None,
            console=console,
            denied=denied,
            active_from=-math.inf if key.created is None else key.created + 1800.0,
            active_to=math.inf if key.retired is None else key.retired,
        )
        self.streams.append(stream)

    def spread(self, typical: float) -> float:
        """A stream's peak rate: heavy-tailed around the typical rate of its service."""
        return float(VOLUME * typical * self.rng.lognormal(0.0, 0.6))

    def pick(self, items: Sequence[str], low: int, high: int) -> list[str]:
        """Between ``low`` and ``high`` distinct items."""
        count = min(len(items), int(self.rng.integers(low, high + 1)))
        return [items[int(i)] for i in self.rng.choice(len(items), size=count, replace=False)]


def service_offset(template: ServiceTemplate, region: Region) -> float:
    """Time zone a service's day follows: its customers' region, or its team's office."""
    return region.utc_offset if template.schedule == "always" else OFFICES[template.office].utc_offset


def aws_service(name: str, region: Region) -> Fixed:
    """An AWS service acting on its own (its name is the logged source address and agent)."""
    return Fixed(f"{name}@{region.name}", name, name, region.place, name)


def bucket_arn(key: Key) -> str:
    """The bucket a storage key protects (S3 logs it in the encryption context)."""
    return f"arn:aws:s3:::{key.service}-{key.region}-{hex_id(6, key.key_id)}"


def owner_streams(maker: _StreamMaker, key: Key, owners: Sequence[Workload]) -> None:
    """The owning service's roles on one of its keys."""
    template = maker.templates.get(key.service)
    if template is None:
        return
    mix = {"data": template.mix, "signing": "signer", "storage": "storage"}.get(key.purpose)
    for workload in owners:
        offset = service_offset(template, workload.region)
        if key.purpose == "secrets":
            secrets_streams(maker, key, workload, template.schedule, offset)
        elif mix is not None:
            storage = key.purpose == "storage"
            maker.add(
                workload,
                key,
                schedule=template.schedule,
                utc_offset=offset,
                peak_rate=maker.spread(template.peak_rate),
                mix=mix,
                resources=[bucket_arn(key)] if storage else (),
                via="s3.amazonaws.com" if storage else None,
                named=not storage and digest(workload.salt, key.key_id) % 2 == 0,
            )


def secrets_streams(maker: _StreamMaker, key: Key, workload: Workload, schedule: str, offset: float) -> None:
    """A role fetching its own few secrets (Secrets Manager) and parameters (SSM) with a key."""
    secrets = [arn for arn in key.inventory if ":secretsmanager:" in arn]
    parameters = [arn for arn in key.inventory if ":ssm:" in arn]
    maker.add(
        workload,
        key,
        schedule=schedule,
        utc_offset=offset,
        peak_rate=maker.spread(0.6),
        mix="secrets",
        resources=maker.pick(secrets, 2, 4),
        via="secretsmanager.amazonaws.com",
    )
    maker.add(
        workload,
        key,
        schedule=schedule,
        utc_offset=offset,
        peak_rate=maker.spread(0.25),
        mix="secrets",
        resources=maker.pick(parameters, 1, 3),
        via="ssm.amazonaws.com",
    )


def service_principal_streams(maker: _StreamMaker, key: Key) -> None:
    """AWS services acting on their own: S3 on bucket keys, Secrets Manager rotation, SSM."""
    region = key.place_region
    if key.purpose == "storage":
        maker.add(
            aws_service("s3.amazonaws.com", region),
            key,
            schedule="flat",
            utc_offset=0.0,
            peak_rate=maker.spread(0.15),
            mix="storage",
            resources=[bucket_arn(key)],
        )
    if key.purpose in ("secrets", "managed-secrets"):
        secrets = [arn for arn in key.inventory if ":secretsmanager:" in arn]
        parameters = [arn for arn in key.inventory if ":ssm:" in arn]
        maker.add(
            aws_service("secretsmanager.amazonaws.com", region),
            key,
            schedule="flat",
            utc_offset=0.0,
            peak_rate=0.02,
            mix="storage",
            resources=maker.pick(secrets, 3, 5),
        )
        maker.add(
            aws_service("ssm.amazonaws.com", region),
            key,
            schedule="flat",
            utc_offset=0.0,
            peak_rate=0.01,
            mix="storage",
            resources=maker.pick(parameters, 1, 2),
        )


def managed_key_streams(maker: _StreamMaker, key: Key, workloads: Sequence[Workload]) -> None:
    """Roles of the account that keep secrets under the AWS-managed Secrets Manager key."""
    secrets = [arn for arn in key.inventory if ":secretsmanager:" in arn]
    for workload in workloads:
        if (
            workload.account != key.account
            or workload.region.name != key.region
            or workload.compute == "actions"
        ):
            continue
        template = maker.templates[workload.service]
        maker.add(
            workload,
            key,
            schedule=template.schedule,
            utc_offset=service_offset(template, workload.region),
            peak_rate=maker.spread(0.2),
            mix="secrets",
            resources=maker.pick(secrets, 1, 2),
            via="secretsmanager.amazonaws.com",
        )


def shared_streams(maker: _StreamMaker, keys: Sequence[Key], workloads: Sequence[Workload]) -> None:
    """Some data keys are also used by one or two other services; the gateway verifies identity tokens."""
    data_keys = [key for key in keys if key.purpose == "data" and key.environment == "production"]
    shared = [key for key in data_keys if digest(key.key_id, "shared") % 8 == 0] or data_keys[:1]
    for key in shared:
        others = [w for w in workloads if w.service != key.service and w.compute != "actions"]
        others.sort(
            key=lambda w: (w.account != key.account, w.region.name != key.region, digest(w.name, key.key_id))
        )
        for workload in others[: 1 + digest(key.key_id, "n") % 2]:
            template = maker.templates[workload.service]
            maker.add(
                workload,
                key,
                schedule=template.schedule,
                utc_offset=service_offset(template, workload.region),
                peak_rate=maker.spread(0.3 * template.peak_rate),
                mix="reader",
                named=True,
            )
    token_keys = [key for key in keys if key.purpose == "signing" and key.service == "identity"]
    for key in token_keys:
        for workload in (w for w in workloads if w.service == "gateway"):
            maker.add(
                workload,
                key,
                schedule="always",
                utc_offset=workload.region.utc_offset,
                peak_rate=maker.spread(1.5),
                mix="verifier",
                named=True,
            )


def people_streams(maker: _StreamMaker, people: Sequence[Person], keys: Sequence[Key]) -> None:
    """Engineers on a few keys of their team's services, by CLI or console, and a secret now and then."""
    for person in people:
        for key in _keys_of_person(maker, person, keys):
            _person_stream(maker, person, key)


def _keys_of_person(maker: _StreamMaker, person: Person, keys: Sequence[Key]) -> list[Key]:
    """One to three keys of the services run from the person's office; administrators see more."""
    if person.admin:
        return [k for k in keys if k.purpose != "escrow" and digest(k.key_id, person.name) % 6 == 0][:6]
    templates = maker.templates
    team = [
        key
        for key in keys
        if key.purpose not in ("escrow", "managed-secrets")
        and templates[key.service].office == person.office.name
    ] or list(keys[:3])
    count = min(len(team), 1 + digest(person.salt) % 3)
    return [team[int(i)] for i in maker.rng.choice(len(team), size=count, replace=False)]


def _person_stream(maker: _StreamMaker, person: Person, key: Key) -> None:
    """A person's calls on one key: a secret read through Secrets Manager, or CLI / console work."""
    if key.purpose == "secrets":
        secrets = [arn for arn in key.inventory if ":secretsmanager:" in arn]
        maker.add(
            person,
            key,
            schedule="person",
            utc_offset=person.office.utc_offset,
            peak_rate=0.03,
            mix="secrets",
            resources=maker.pick(secrets, 1, 2),
            via="secretsmanager.amazonaws.com",
            denied=0.01,
        )
        return
    console = person.admin or digest(person.salt, key.key_id) % 10 < 3
    maker.add(
        person,
        key,
        schedule="person",
        utc_offset=person.office.utc_offset,
        peak_rate=float(maker.rng.uniform(0.05, 0.4)),
        mix="person-console" if console else "person-cli",
        console=console,
        named=not console,
        denied=0.01,
    )


def misconfigured_stream(maker: _StreamMaker, keys: Sequence[Key], workloads: Sequence[Workload]) -> None:
    """A role whose key grant was never applied: it is denied on one key all the time."""
    caller = next((w for w in workloads if w.compute != "actions"), workloads[0])
    target = next((k for k in keys if k.service != caller.service and k.purpose == "data"), keys[0])
    maker.add(caller, target, schedule="flat", utc_offset=0.0, peak_rate=0.05, mix="reader", denied=1.0)


def plan_lifecycle(
    keys: Sequence[Key], templates: dict[str, ServiceTemplate], calendar: Calendar
) -> dict[str, int]:
    """One key is created and another retired during the history."""
    history = calendar.test_start - calendar.start
    candidates = [
        k for k in keys if k.purpose == "data" and templates[k.service].schedule in ("always", "business")
    ]
    lifecycle: dict[str, int] = {}
    by_service: dict[str, list[Key]] = {}
    for key in candidates:
        by_service.setdefault(key.service, []).append(key)
    several = [group[-1] for group in by_service.values() if len(group) >= 2]
    if several:
        created = several[0]
        created.created = calendar.start + 0.45 * history
        lifecycle["created"] = created.index
    if len(several) >= 2:
        retired = several[1]
        retired.retired = calendar.start + 0.5 * history
        lifecycle["retired"] = retired.index
    return lifecycle


def build_world(seed: int, keys: int, calendar: Calendar) -> World:
    """The organisation of one seed, with ``keys`` keys in its fleet."""
    rng = np.random.default_rng([seed, 0])
    services = choose_services(keys)
    templates = {service.name: service for service in services}
    key_list = build_keys(rng, services, keys)
    fill_inventories(key_list)
    lifecycle = plan_lifecycle(key_list, templates, calendar)
    workloads = build_workloads(rng, services, (calendar.start, calendar.test_start))
    people = build_people(rng, services, keys)
    maker = _StreamMaker(rng, Tables(), templates)
    for key in key_list:
        owners = [w for w in workloads if w.service == key.service and w.region.name == key.region]
        owner_streams(maker, key, owners)
        service_principal_streams(maker, key)
        if key.purpose == "managed-secrets":
            managed_key_streams(maker, key, workloads)
    shared_streams(maker, key_list, workloads)
    people_streams(maker, people, key_list)
    misconfigured_stream(maker, key_list, workloads)
    active = [k for k in key_list if k.purpose != "escrow"]
    return World(
        seed=seed,
        calendar=calendar,
        tables=maker.tables,
        services=tuple(services),
        keys=key_list,
        workloads=workloads,
        people=people,
        streams=maker.streams,
        admin=key_admin(),
        managed=frozenset(k.index for k in active if digest(k.key_id, "managed") % 5 < 2),
        backed_up=frozenset(
            k.index for k in active if k.purpose in ("data", "storage") and digest(k.key_id) % 2 == 0
        ),
        lifecycle=lifecycle,
    )


def key_admin() -> Fixed:
    """The key-admin automation: one role, one fixed network."""
    region = REGIONS["us-east-1"]
    principal = assumed_role(ACCOUNTS["security"], ADMIN_ROLE, "key-admin-automation")
    ip = _public_ip(region.public_blocks, digest("key-admin"), 0)
    return Fixed("key-admin-automation", principal, ip, region.place, SDK_AGENTS["lambda-python"][0])
