"""Builders shared by the unit tests: canonical events and a small, deterministic organisation.

The organisation has two keys and three principals:

* ``KEY_PROD`` is used around the clock by the workload ``ORDERS`` from US addresses (a busy
  day from 08:00 to 21:00 UTC, a trickle at night, one denied call an hour), and by the person
  ``ALICE`` from New York on weekdays between 09:00 and 17:00 UTC.
* ``KEY_DEV`` is used by the workload ``REPORTS`` from Frankfurt (DE) between 06:00 and 18:00 UTC
  and is idle at night.
* ``ALICE`` is the only administrator: she rotates both keys every day at 10:30 UTC.

Every minute's traffic is a pure function of the minute, so "normal traffic" for any later
period is exactly what the history looked like, and tests can add an attack on top of it.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from detector.domain.alerts import Alert
from detector.domain.events import Event
from detector.pipeline import Pipeline

T0 = 1_714_348_800.0  # 2024-04-29T00:00:00Z, a Monday
HISTORY_DAYS = 3
T_END = T0 + HISTORY_DAYS * 86_400.0  # Thursday 00:00 UTC: where history stops
DAY3 = T_END  # the day the tests attack on
MINUTE = 60.0
HOUR = 3_600.0

ACCOUNT = "111122223333"
KEY_PROD = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/prod-orders"
KEY_DEV = f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/dev-reports"
ORDERS = f"arn:aws:sts::{ACCOUNT}:assumed-role/orders-app/i-0abc1234"
ORDERS_ID = f"arn:aws:sts::{ACCOUNT}:assumed-role/orders-app"
REPORTS = f"arn:aws:sts::{ACCOUNT}:assumed-role/reports-app/i-0def5678"
REPORTS_ID = f"arn:aws:sts::{ACCOUNT}:assumed-role/reports-app"
ALICE = f"arn:aws:iam::{ACCOUNT}:user/alice"

# (country, lat, lon) of the places the organisation works from, and of some it never does.
ASHBURN = ("US", 39.0438, -77.4874)
NEW_YORK = ("US", 40.7128, -74.0060)
FRANKFURT = ("DE", 50.1109, 8.6821)
SAO_PAULO = ("BR", -23.5505, -46.6333)
SINGAPORE = ("SG", 1.3521, 103.8198)

ORDERS_IPS = tuple(f"54.157.10.{i}" for i in range(1, 5))  # one /24
REPORTS_IPS = tuple(f"3.120.5.{i}" for i in range(1, 4))
ALICE_IP = "65.112.1.10"
SDK_UA = "aws-sdk-go/1.0"
CLI_UA = "aws-cli/2.15"


def make_event(**overrides: Any) -> Event:
    """A canonical event (``ts`` in epoch seconds); every field can be overridden.

    ``place=(country, lat, lon)`` sets the three geography fields at once.
    """
    place = overrides.pop("place", ASHBURN)
    fields: dict[str, Any] = {
        "event_id": "e-1",
        "ts": DAY3 + 10 * HOUR,
        "key_id": KEY_PROD,
        "operation": "Decrypt",
        "principal": ORDERS,
        "source_ip": ORDERS_IPS[0],
        "outcome": "success",
        "source": "aws-kms",
        "country": place[0],
        "lat": place[1],
        "lon": place[2],
        "user_agent": SDK_UA,
    }
    unknown = set(overrides) - set(fields) - {"region", "key_alias", "request_id", "resource"}
    if unknown:
        raise TypeError(f"make_event got unknown fields {sorted(unknown)}")
    fields.update(overrides)
    return Event(**fields)


def spread(start: float, n: int, seconds: float = MINUTE, **fields: Any) -> list[Event]:
    """``n`` events evenly spread over ``seconds`` from ``start``, ids ``<prefix>-<i>``."""
    prefix = fields.pop("prefix", "x")
    step = seconds / (n + 1)
    return [make_event(event_id=f"{prefix}-{i}", ts=start + (i + 0.5) * step, **fields) for i in range(n)]


def _minute(m: int) -> list[Event]:
    """The organisation's normal traffic in absolute minute ``m`` (deterministic)."""
    rng = random.Random(m)
    t = m * MINUTE
    hour = (m // 60) % 24
    weekday = ((m // 1440) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    out: list[Event] = []
    n = 4 + rng.randint(0, 2) if 8 <= hour < 21 else 1 + rng.randint(0, 1)
    for i in range(n):
        out.append(make_event(
            event_id=f"o-{m}-{i}", ts=t + (i + 0.5) * MINUTE / (n + 1), key_id=KEY_PROD,
            operation="GenerateDataKey" if i % 5 == 0 else "Decrypt", principal=ORDERS,
            source_ip=ORDERS_IPS[i % 4], place=ASHBURN,
            outcome="denied" if m % 60 == 17 and i == 0 else "success",
        ))  # fmt: skip
    if 6 <= hour < 18:
        n = 2 + rng.randint(0, 1)
        for i in range(n):
            out.append(make_event(
                event_id=f"r-{m}-{i}", ts=t + (i + 0.3) * MINUTE / (n + 1), key_id=KEY_DEV,
                operation="Encrypt" if i % 2 else "GenerateDataKey", principal=REPORTS,
                source_ip=REPORTS_IPS[i % 3], place=FRANKFURT,
            ))  # fmt: skip
    if weekday < 5 and 9 <= hour < 17:
        out.extend(_alice(m, t, hour))
    return out


def _alice(m: int, t: float, hour: int) -> list[Event]:
    mm = m % 60
    who = {"principal": ALICE, "source_ip": ALICE_IP, "place": NEW_YORK, "user_agent": CLI_UA}
    out = []
    if mm % 10 == 3:
        out.append(make_event(event_id=f"a-{m}", ts=t + 41, key_id=KEY_PROD, operation="Decrypt", **who))
    if mm == 5:
        out.append(make_event(event_id=f"ad-{m}", ts=t + 42, key_id=KEY_PROD, operation="DescribeKey", **who))
    if hour == 10 and mm == 30:
        for i, key in enumerate((KEY_PROD, KEY_DEV)):
            out.append(make_event(event_id=f"rot-{m}-{i}", ts=t + 43 + i, key_id=key,
                                  operation="RotateKeyOnDemand", **who))  # fmt: skip
    return out


def normal_traffic(start: float, end: float) -> list[Event]:
    """Every event of the normal organisation in ``[start, end)`` (whole minutes), by time."""
    events = [e for m in range(int(start // MINUTE), int(end // MINUTE)) for e in _minute(m)]
    events.sort(key=lambda e: e.ts)
    return events


def merged(*parts: Iterable[Event]) -> list[Event]:
    """Several event lists as one, in event-time order."""
    return sorted((e for part in parts for e in part), key=lambda e: e.ts)


def run(pipe: Pipeline, events: Iterable[Event]) -> list[Alert]:
    """Feed ``events`` and close every window (end of input); the alerts created or changed."""
    pipe.process(events)
    return pipe.finish()


def by_detector(alerts: Iterable[Alert], detector: str) -> list[Alert]:
    """The alerts of one detector."""
    return [a for a in alerts if a.detector == detector]
