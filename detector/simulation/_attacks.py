"""Attack families of the catalogue, each written from its description in ``families.yaml``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._background import resolve, typical_rate
from ._context import (
    ATTACKER_AGENT,
    Context,
    Injection,
    Suppression,
    as_workload,
    choose_person,
    injection,
    over,
    person_keys,
    steady,
    stream_key,
    stream_who,
    with_most_keys,
    workload_keys,
    workload_streams,
)
from ._identities import Person, person_home_code
from ._places import CONTINENT, FOREIGN, HOSTING, ISPS
from ._traffic import (
    DAY,
    DENIED,
    MINUTE,
    OP,
    Batch,
    FloatArray,
    digest,
    draw_codes,
    make_batch,
    spread_times,
    times_at_rate,
)
from ._world import Key

# ---------------------------------------------------------------- attacks, classic


def exfiltration_spike(ctx: Context) -> Injection:
    """Stolen role session bulk-decrypting the role's keys from a hosting network."""
    streams = with_most_keys(
        ctx.world, workload_streams(ctx.world, mixes=("reader", "envelope")), ctx.full_count("keys")
    )
    stream = ctx.choose(streams, stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, _ = ctx.stolen(workload, start)
    address = ctx.address_in(HOSTING[int(ctx.rng.integers(0, len(HOSTING)))])
    others = [s for s in workload_streams(ctx.world) if s.identity is workload and s.key != stream.key]
    agent = ctx.world.tables.agent(ATTACKER_AGENT)
    batches = []
    for target in [stream, *others][: ctx.count("keys")]:
        usual = typical_rate(target, ctx.world, start)
        rate = max(ctx.params["min_rate_per_minute"], ctx.params["rate_multiplier"] * usual)
        ts = times_at_rate(ctx.rng, start, end, rate, dispersion=3.0)
        operations = ctx.ops({"Decrypt": 0.9, "GenerateDataKey": 0.1}, ts.size)
        batches.append(
            ctx.batch(
                ts, key=target.key, operation=operations, principal=principal, address=address, agent=agent
            )
        )
    detail = (
        f"{workload.role} session replayed from {ctx.name_of(address)}, x{ctx.params['rate_multiplier']:.1f}"
    )
    return injection(batches, start, end, detail)


def foreign_geography(ctx: Context) -> Injection:
    """A person's credentials used from a country the organisation never works from."""
    person = choose_person(ctx)
    start, end = ctx.window(ctx.params["duration_minutes"])
    network = FOREIGN[int(ctx.rng.integers(0, len(FOREIGN)))]
    address = ctx.address_in(network)
    mix = {"Decrypt": 0.6, "DescribeKey": 0.25, "GenerateDataKey": 0.15}
    batch, calls = _person_cli_calls(ctx, person, address, start, end, mix)
    return injection([batch], start, end, f"{person.name} from {ctx.name_of(address)}, {calls} calls")


def impossible_travel(ctx: Context) -> Injection:
    """A person at home, then minutes later the same identity on another continent."""
    person = choose_person(ctx)
    gap = ctx.params["gap_minutes"]
    start, end = ctx.window(
        ctx.params["duration_minutes"],
        utc_offset=person.office.utc_offset,
        hours=(9, 17),
        rest=False,
        lead_minutes=gap + 10,
    )
    key = ctx.world.keys[person_keys(ctx.world, person)[0]]
    before = usual_calls(ctx, person, key, start - gap * MINUTE - np.sort(ctx.rng.uniform(30, 240, size=4)))
    tables = ctx.world.tables
    home_continent = CONTINENT[person.office.place.country]
    far = [n for n in ISPS if CONTINENT[n.place.country] != home_continent]
    address = ctx.address_in(far[int(ctx.rng.integers(0, len(far)))])
    ts = spread_times(ctx.rng, start, end, ctx.count("calls"))
    after = ctx.batch(
        ts,
        key=key.index,
        operation=ctx.ops({"Decrypt": 0.8, "DescribeKey": 0.2}, ts.size),
        principal=tables.principal(person.principal),
        address=address,
        agent=tables.agent(person.cli_agent),
    )
    detail = (
        f"{person.name} in {person.office.place.country}, {gap:.0f} min later from {ctx.name_of(address)}"
    )
    return injection([before, after], start, end, detail)


def usual_calls(ctx: Context, person: Person, key: Key, ts: FloatArray) -> Batch:
    """A person's ordinary Decrypt calls from their usual network (not labelled)."""
    callers = resolve(ctx.world, person, key, ts, ctx.rng, via=None, console=False)
    return make_batch(
        ts,
        key=key.index,
        operation=OP["Decrypt"],
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
    )


def destructive_operations(ctx: Context) -> Injection:
    """A data-only role disables its keys or schedules their deletion."""
    streams = workload_streams(ctx.world, schedules=("always", "business"))
    stream = ctx.choose(with_most_keys(ctx.world, streams, ctx.full_count("keys")), stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, address = ctx.stolen(workload, start)
    keys = ctx.take_counted(workload_keys(ctx.world, workload), "keys")
    firsts = spread_times(ctx.rng, start, end - 3 * MINUTE, len(keys))
    ts = np.concatenate([firsts, firsts + ctx.rng.uniform(20, 150, size=len(keys))])
    destroy = [OP["DisableKey"] if n % 2 == 0 else OP["ScheduleKeyDeletion"] for n in range(len(keys))]
    operations = np.array([OP["DescribeKey"]] * len(keys) + destroy)
    agent = ctx.world.tables.agent(workload.agents[1] if start >= workload.upgrade_at else workload.agents[0])
    batch = ctx.batch(
        ts, key=np.array(keys * 2), operation=operations, principal=principal, address=address, agent=agent
    )
    return injection([batch], start, end, f"{workload.role} disabling or deleting {len(keys)} of its keys")


def denied_probing(ctx: Context) -> Injection:
    """One session denied across many keys it never used."""
    stream = ctx.choose(workload_streams(ctx.world, schedules=("always", "business")), stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, address = ctx.stolen(workload, start)
    own = ctx.world.identity_keys(workload.name)
    strangers = [k.index for k in ctx.world.keys if k.index not in own and k.purpose != "escrow"]
    keys = ctx.take_counted(strangers, "keys")
    per_key = ctx.count("calls_per_key")
    ts = spread_times(ctx.rng, start, end, len(keys) * per_key)
    mix = {"Decrypt": 0.4, "DescribeKey": 0.3, "GetKeyPolicy": 0.15, "GenerateDataKey": 0.15}
    batch = ctx.batch(
        ts,
        key=np.repeat(keys, per_key),
        operation=ctx.ops(mix, ts.size),
        principal=principal,
        address=address,
        agent=ctx.world.tables.agent(ATTACKER_AGENT),
        outcome=DENIED,
    )
    return injection([batch], start, end, f"{workload.role} session denied on {len(keys)} keys")


def low_and_slow(ctx: Context) -> Injection:
    """A modest extra Decrypt rate for hours, all from a new hosting network."""
    stream = ctx.choose(workload_streams(ctx.world, busy=True), stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, _ = ctx.stolen(workload, start)
    address = ctx.address_in(HOSTING[int(ctx.rng.integers(0, len(HOSTING)))])
    usual = typical_rate(stream, ctx.world, start)
    extra = max(ctx.params["min_extra_rate_per_minute"], (ctx.params["rate_multiplier"] - 1.0) * usual)
    ts = times_at_rate(ctx.rng, start, end, extra, dispersion=2.0)
    batch = ctx.batch(
        ts,
        key=stream.key,
        operation=OP["Decrypt"],
        principal=principal,
        address=address,
        agent=ctx.world.tables.agent(ATTACKER_AGENT),
    )
    return injection(
        [batch], start, end, f"{workload.role} session from {ctx.name_of(address)}, +{extra:.2f}/min"
    )


def new_principal(ctx: Context) -> Injection:
    """A role of another service starts decrypting with a key it never used."""
    streams = workload_streams(ctx.world)
    key = ctx.world.keys[ctx.choose(streams, stream_key, stream_who).key]
    callers_of_key = {s.identity.name for s in ctx.world.key_streams(key.index)}
    strangers = [
        w
        for w in ctx.world.workloads
        if w.name not in callers_of_key and w.compute != "actions" and w.service != key.service
    ]
    strangers.sort(
        key=lambda w: (w.account != key.account, ctx.usage.identities[w.name], digest(w.name, ctx.tag))
    )
    workload = strangers[0]
    ctx.usage.identities[workload.name] += 1
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, address = ctx.stolen(workload, start)
    ts = times_at_rate(ctx.rng, start, end, ctx.params["rate_per_minute"], dispersion=3.0)
    batch = ctx.batch(
        ts,
        key=key.index,
        operation=ctx.ops({"Decrypt": 0.85, "DescribeKey": 0.15}, ts.size),
        principal=principal,
        address=address,
        agent=ctx.world.tables.agent(workload.agents[1 if start >= workload.upgrade_at else 0]),
    )
    return injection(
        [batch], start, end, f"{workload.role} decrypting with a {key.service} key for the first time"
    )


def off_hours_person(ctx: Context) -> Injection:
    """A person who never works nights decrypts around 03:00 local time from home."""
    person = choose_person(ctx, on_call=False)
    start, end = ctx.window(
        ctx.params["duration_minutes"], utc_offset=person.office.utc_offset, hours=(2.5, 3.5)
    )
    day = int(np.floor((start + person.office.utc_offset * 3600.0) / DAY))
    address = person_home_code(person, day, ctx.world.tables)
    mix = {"Decrypt": 0.8, "DescribeKey": 0.1, "GenerateDataKey": 0.1}
    batch, calls = _person_cli_calls(ctx, person, address, start, end, mix)
    return injection([batch], start, end, f"{person.name} at 03:00 local from home, {calls} calls")


def ransom_reencryption(ctx: Context) -> Injection:
    """ReEncrypt/Encrypt sweeps over a role's keys from a hosting network, then policies rewritten."""
    streams = workload_streams(ctx.world, schedules=("always", "business"))
    stream = ctx.choose(with_most_keys(ctx.world, streams, ctx.full_count("keys")), stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, _ = ctx.stolen(workload, start)
    address = ctx.address_in(HOSTING[int(ctx.rng.integers(0, len(HOSTING)))])
    keys = ctx.take_counted(workload_keys(ctx.world, workload), "keys")
    agent = ctx.world.tables.agent(ATTACKER_AGENT)
    batches = []
    for key in keys:
        recon = start + np.sort(ctx.rng.uniform(0, 60, size=2))
        sweep = times_at_rate(
            ctx.rng, start + MINUTE, end - 2 * MINUTE, ctx.params["reencrypt_rate_per_minute"]
        )
        lock = end - ctx.rng.uniform(10, 100, size=1)
        ts = np.concatenate([recon, sweep, lock])
        operations = np.concatenate(
            [
                [OP["DescribeKey"], OP["GetKeyPolicy"]],
                ctx.ops({"ReEncrypt": 0.8, "Encrypt": 0.2}, sweep.size),
                [OP["PutKeyPolicy"]],
            ]
        )
        batches.append(
            ctx.batch(ts, key=key, operation=operations, principal=principal, address=address, agent=agent)
        )
    return injection(
        batches, start, end, f"{workload.role} session re-encrypting {len(keys)} keys, then locking them"
    )


# ------------------------------------------- attacks by familiar callers from familiar places


def workload_credentials_outside(ctx: Context) -> Injection:
    """A role's session used from an ISP in another country the organisation works in."""
    streams = workload_streams(ctx.world, schedules=("always", "business"), busy=True)
    stream = ctx.choose(streams, stream_key, stream_who)
    workload = as_workload(stream)
    start, end = ctx.window(ctx.params["duration_minutes"])
    principal, _ = ctx.stolen(workload, start)
    elsewhere = [n for n in ISPS if n.place.country != workload.region.place.country]
    address = ctx.address_in(elsewhere[int(ctx.rng.integers(0, len(elsewhere)))])
    ts = times_at_rate(ctx.rng, start, end, ctx.params["rate_per_minute"], dispersion=2.0)
    agent = ctx.world.tables.agent(workload.agents[1 if start >= workload.upgrade_at else 0])
    batch = ctx.batch(
        ts,
        key=stream.key,
        operation=draw_codes(ctx.rng, stream.operations, stream.weights, ts.size),
        principal=principal,
        address=address,
        agent=agent,
    )
    return injection([batch], start, end, f"{workload.role} session from {ctx.name_of(address)}")


def sustained_rise(ctx: Context) -> Injection:
    """The usual callers of a key, several times busier for hours."""
    stream = ctx.choose(workload_streams(ctx.world, busy=True), stream_key, stream_who)
    start, end = ctx.window(ctx.params["duration_minutes"])
    batch = over(ctx, stream, start, end, ctx.params["rate_multiplier"] - 1.0)
    detail = f"{as_workload(stream).role} at x{ctx.params['rate_multiplier']:.2f} on its key"
    return injection([batch], start, end, detail, targets=[stream.key])


def night_use_by_service(ctx: Context) -> Injection:
    """A business-hours key used at night by its own role."""
    stream = ctx.choose(workload_streams(ctx.world, schedules=("business",)), stream_key, stream_who)
    start, end = ctx.window(ctx.params["duration_minutes"], utc_offset=stream.utc_offset, hours=(0.5, 1.5))
    rate = ctx.params["daytime_share"] * stream.peak_rate
    batch = steady(ctx, stream, start, end, rate)
    return injection(
        [batch], start, end, f"{as_workload(stream).role} at night, {rate:.2f}/min", targets=[stream.key]
    )


def operation_mix_shift(ctx: Context) -> Injection:
    """The usual caller of an encrypting key switches to mostly Decrypt."""
    streams = workload_streams(ctx.world, mixes=("envelope", "writer"), busy=True)
    stream = ctx.choose(streams, stream_key, stream_who)
    start, end = ctx.window(ctx.params["duration_minutes"])
    share = min(1.0, ctx.params["shifted_share"])
    weights = [(1.0 - share) * w / sum(stream.weights) for w in stream.weights]
    operations = [*stream.operations, OP["Decrypt"]]
    batch = over(ctx, stream, start, end, 1.0, mix=(tuple(operations), (*weights, share)))
    detail = f"{as_workload(stream).role}: {share:.0%} of its calls turn to Decrypt"
    stop = Suppression(start, end, origin=stream.origin)
    return injection([batch], start, end, detail, suppress=[stop], targets=[stream.key])


def rest_day_use(ctx: Context) -> Injection:
    """A working-day key used steadily on a rest day by its usual role."""
    stream = ctx.choose(workload_streams(ctx.world, schedules=("business",)), stream_key, stream_who)
    start, end = ctx.window(
        ctx.params["duration_minutes"], utc_offset=stream.utc_offset, hours=(8.5, 11), rest=True
    )
    rate = ctx.params["weekday_share"] * stream.peak_rate
    batch = steady(ctx, stream, start, end, rate)
    return injection(
        [batch], start, end, f"{as_workload(stream).role} on a rest day, {rate:.2f}/min", targets=[stream.key]
    )


def key_sweep(ctx: Context) -> Injection:
    """A familiar engineer reads many keys they rarely or never touch."""
    person = choose_person(ctx)
    start, end = ctx.window(
        ctx.params["duration_minutes"], utc_offset=person.office.utc_offset, hours=(9.5, 16), rest=False
    )
    own = set(person_keys(ctx.world, person))
    keys = ctx.take_counted(
        [k.index for k in ctx.world.keys if k.index not in own and k.purpose != "escrow"], "keys"
    )
    per_key = ctx.count("calls_per_key")
    ts = spread_times(ctx.rng, start, end, len(keys) * per_key)
    key_codes = np.repeat(keys, per_key)
    callers = resolve(ctx.world, person, ctx.world.keys[keys[0]], ts, ctx.rng, via=None, console=False)
    batch = ctx.batch(
        ts,
        key=key_codes,
        operation=ctx.ops({"Decrypt": 0.5, "GenerateDataKey": 0.2, "DescribeKey": 0.3}, ts.size),
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
    )
    return injection([batch], start, end, f"{person.name} reading {len(keys)} keys outside their own")


def signing_burst(ctx: Context) -> Injection:
    """The usual signer signs several times more than normal."""
    signers = workload_streams(ctx.world, purposes=("signing",), mixes=("signer",))
    if not signers:
        signers = [s for s in ctx.world.streams if s.mix == "signer"]
    stream = ctx.choose(signers, stream_key, stream_who)
    start, end = ctx.window(ctx.params["duration_minutes"], utc_offset=stream.utc_offset, hours=(9, 17))
    sign_only = ((OP["Sign"],), (1.0,))
    batch = over(ctx, stream, start, end, ctx.params["rate_multiplier"] - 1.0, mix=sign_only, dispersion=4.0)
    detail = f"Sign at x{ctx.params['rate_multiplier']:.2f} by its usual signer"
    return injection([batch], start, end, detail, targets=[stream.key])


def secret_harvest(ctx: Context) -> Injection:
    """A person reads dozens of distinct secrets and parameters within minutes."""
    person = choose_person(ctx)
    start, end = ctx.window(
        ctx.params["duration_minutes"], utc_offset=person.office.utc_offset, hours=(9.5, 17)
    )
    holders = [k for k in ctx.world.keys if k.inventory]
    pairs = [(key, arn) for key in holders for arn in key.inventory]
    picks = ctx.rng.permutation(len(pairs))
    ctx.usage.keys.update(pairs[int(i)][0].index for i in picks[: ctx.full_count("resources")])
    chosen = [pairs[int(i)] for i in picks[: ctx.count("resources")]]
    repeats = [pair for pair in chosen if ctx.rng.random() < 0.25]
    calls = chosen + repeats
    ts = spread_times(ctx.rng, start, end, len(calls))
    tables = ctx.world.tables
    vias = [
        "secretsmanager.amazonaws.com" if ":secretsmanager:" in arn else "ssm.amazonaws.com"
        for _, arn in calls
    ]
    batch = ctx.batch(
        ts,
        key=np.array([key.index for key, _ in calls]),
        operation=OP["Decrypt"],
        principal=tables.principal(person.principal),
        address=np.array(
            [tables.address(via, key.place_region.place) for (key, _), via in zip(calls, vias, strict=True)]
        ),
        agent=np.array([tables.agent(via) for via in vias]),
        resource=np.array([tables.resource(arn) for _, arn in calls]),
    )
    return injection(
        [batch], start, end, f"{person.name} reading {len(chosen)} distinct secrets and parameters"
    )


def destructive_on_new_key(ctx: Context) -> Injection:
    """A dormant key with no history disabled or scheduled for deletion by a non-administrator."""
    person = choose_person(ctx)
    escrow = [k.index for k in ctx.world.keys if k.purpose == "escrow"]
    keys = ctx.take_counted(escrow, "keys")
    start, end = ctx.window(ctx.params["duration_minutes"])
    firsts = spread_times(ctx.rng, start, end - 2 * MINUTE, len(keys))
    ts = np.concatenate([firsts, firsts + ctx.rng.uniform(15, 90, size=len(keys))])
    destroy = ctx.rng.choice([OP["DisableKey"], OP["ScheduleKeyDeletion"]], size=len(keys))
    callers = resolve(ctx.world, person, ctx.world.keys[keys[0]], ts, ctx.rng, via=None, console=False)
    batch = ctx.batch(
        ts,
        key=np.array(keys * 2),
        operation=np.concatenate([[OP["DescribeKey"]] * len(keys), destroy]),
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
    )
    return injection([batch], start, end, f"{person.name} destroying {len(keys)} dormant key(s)")


def policy_tamper(ctx: Context) -> Injection:
    """A non-administrator reads a key policy and replaces it."""
    person = choose_person(ctx)
    keys = ctx.take_counted(person_keys(ctx.world, person), "keys")
    start, end = ctx.window(
        ctx.params["duration_minutes"], utc_offset=person.office.utc_offset, hours=(9.5, 17)
    )
    reads = spread_times(ctx.rng, start, end - 2 * MINUTE, len(keys))
    ts = np.concatenate([reads, reads + ctx.rng.uniform(30, 100, size=len(keys))])
    operations = np.array([OP["GetKeyPolicy"]] * len(keys) + [OP["PutKeyPolicy"]] * len(keys))
    callers = resolve(ctx.world, person, ctx.world.keys[keys[0]], ts, ctx.rng, via=None, console=True)
    batch = ctx.batch(
        ts,
        key=np.array(keys * 2),
        operation=operations,
        principal=callers.principal,
        address=callers.address,
        agent=callers.agent,
    )
    return injection([batch], start, end, f"{person.name} replacing the policy of {len(keys)} key(s)")


ATTACKS: dict[str, Callable[[Context], Injection]] = {
    "exfiltration_spike": exfiltration_spike,
    "foreign_geography": foreign_geography,
    "impossible_travel": impossible_travel,
    "destructive_operations": destructive_operations,
    "denied_probing": denied_probing,
    "low_and_slow": low_and_slow,
    "new_principal": new_principal,
    "off_hours_person": off_hours_person,
    "ransom_reencryption": ransom_reencryption,
    "workload_credentials_outside": workload_credentials_outside,
    "sustained_rise": sustained_rise,
    "night_use_by_service": night_use_by_service,
    "operation_mix_shift": operation_mix_shift,
    "rest_day_use": rest_day_use,
    "key_sweep": key_sweep,
    "signing_burst": signing_burst,
    "secret_harvest": secret_harvest,
    "destructive_on_new_key": destructive_on_new_key,
    "policy_tamper": policy_tamper,
}


def _person_cli_calls(
    ctx: Context, person: Person, address: int, start: float, end: float, mix: dict[str, float]
) -> tuple[Batch, int]:
    """A person's CLI calls over ``[start, end)`` on their first ``keys`` keys; the batch and its size."""
    keys = person_keys(ctx.world, person)[: ctx.count("keys")]
    ts = spread_times(ctx.rng, start, end, ctx.count("calls"))
    tables = ctx.world.tables
    batch = ctx.batch(
        ts,
        key=np.asarray(keys)[ctx.rng.integers(0, len(keys), size=ts.size)],
        operation=ctx.ops(mix, ts.size),
        principal=tables.principal(person.principal),
        address=address,
        agent=tables.agent(person.cli_agent),
    )
    return batch, int(ts.size)
