"""The classic generator: synthetic AWS KMS usage of one organisation, with labelled attacks and surprises.

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

Modules: ``_places`` (reference data), ``_world`` and ``_organisation`` (keys, services, people),
``_traffic`` (rate profiles and background events), ``_scenarios`` (the registry and what scenarios
share), ``_attacks`` and ``_benign`` (one registered function per scenario), ``_labels``, and
``_generator`` (:func:`simulate`).
"""

from __future__ import annotations

from ._attacks import ATTACKS
from ._benign import BENIGN
from ._generator import DEFAULT_START, SOURCE, simulate
from ._labels import GENERATOR

__all__ = ["ATTACKS", "BENIGN", "DEFAULT_START", "GENERATOR", "SOURCE", "simulate"]
