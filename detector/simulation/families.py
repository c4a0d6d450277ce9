"""The threat and benign-change catalogue of the fleet generator, loaded from ``families.yaml``.

>>> families = load_families()
>>> families["sustained_rise"].kind, families["sustained_rise"].scaled(0.5)["rate_multiplier"]
('attack', 2.5)
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml

KINDS = ("attack", "benign")
RULES = ("multiplier", "count", "rate")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_ENTRY_FIELDS = frozenset({"name", "kind", "actor", "description", "params", "scales"})


@dataclass(frozen=True, slots=True)
class Scale:
    """How attack strength rewrites one parameter (see ``scaling_rules`` in the YAML)."""

    rule: str
    floor: float = 0.0

    def apply(self, value: float, strength: float) -> float:
        """The parameter at ``strength`` (1 = full strength)."""
        if self.rule == "multiplier":
            return 1.0 + (value - 1.0) * strength
        if self.rule == "count":
            return float(max(self.floor, round(value * strength)))
        return max(self.floor, value * strength)


@dataclass(frozen=True, slots=True)
class Family:
    """One attack or benign change the generator can inject."""

    name: str
    kind: str
    actor: str
    description: str
    params: Mapping[str, float]
    scales: Mapping[str, Scale]

    @property
    def is_attack(self) -> bool:
        """True for attacks, False for benign confounders."""
        return self.kind == "attack"

    def scaled(self, strength: float) -> dict[str, float]:
        """Every parameter at ``strength``; unscaled ones keep their full-strength value."""
        if not math.isfinite(strength) or strength <= 0:
            raise ValueError(f"strength must be a positive number, got {strength!r}")
        return {
            name: self.scales[name].apply(value, strength) if name in self.scales else value
            for name, value in self.params.items()
        }


def load_families() -> dict[str, Family]:
    """The packaged catalogue, by family name, in file order."""
    text = resources.files("detector.simulation").joinpath("families.yaml").read_text(encoding="utf-8")
    return parse_families(yaml.safe_load(text))


def parse_families(data: object) -> dict[str, Family]:
    """Validate a loaded catalogue document; a ``ValueError`` names the entry at fault."""
    if not isinstance(data, dict) or not isinstance(data.get("families"), list):
        raise ValueError("family catalogue must be a mapping with a 'families' list")
    rules = data.get("scaling_rules")
    if not isinstance(rules, dict) or set(rules) != set(RULES):
        raise ValueError(f"family catalogue must document exactly the scaling rules {list(RULES)}")
    families: dict[str, Family] = {}
    for index, raw in enumerate(data["families"]):
        family = _parse_entry(index, raw)
        if family.name in families:
            raise ValueError(f"family entry {family.name!r}: name used twice")
        families[family.name] = family
    if not families:
        raise ValueError("family catalogue is empty")
    return families


def _parse_entry(index: int, raw: object) -> Family:
    """One ``families`` item."""
    if not isinstance(raw, dict):
        raise ValueError(f"family entry #{index}: must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"family entry #{index}: 'name' must be a snake_case string, got {name!r}")
    where = f"family entry {name!r}"
    unknown = set(raw) - _ENTRY_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    if raw.get("kind") not in KINDS:
        raise ValueError(f"{where}: 'kind' must be one of {list(KINDS)}, got {raw.get('kind')!r}")
    for text_field in ("actor", "description"):
        if not isinstance(raw.get(text_field), str) or not raw[text_field].strip():
            raise ValueError(f"{where}: '{text_field}' must be a non-empty string")
    params = _parse_params(where, raw.get("params"))
    scales = _parse_scales(where, raw.get("scales"), params)
    return Family(
        name=name,
        kind=raw["kind"],
        actor=raw["actor"].strip(),
        description=" ".join(raw["description"].split()),
        params=MappingProxyType(params),
        scales=MappingProxyType(scales),
    )


def _parse_params(where: str, raw: object) -> dict[str, float]:
    """``params``: named non-negative finite numbers."""
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: 'params' must be a non-empty mapping of numbers")
    params: dict[str, float] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not _NAME.match(key):
            raise ValueError(f"{where}: parameter name {key!r} is not snake_case")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{where}: parameter {key!r} must be a number, got {value!r}")
        if value < 0:
            raise ValueError(f"{where}: parameter {key!r} must not be negative, got {value!r}")
        params[key] = float(value)
    return params


def _parse_scales(where: str, raw: object, params: Mapping[str, float]) -> dict[str, Scale]:
    """``scales``: for some parameters, the rule strength applies to them."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: 'scales' must be a mapping of parameter -> {{rule, floor}}")
    scales: dict[str, Scale] = {}
    for key, spec in raw.items():
        if key not in params:
            raise ValueError(f"{where}: scales {key!r}, which is not among its params")
        scales[key] = _parse_scale(f"{where}, scale of {key!r}", spec, params[key])
    return scales


def _parse_scale(where: str, spec: Any, value: float) -> Scale:
    """One ``{rule, floor}`` item, checked against the parameter's full-strength value."""
    if not isinstance(spec, dict) or spec.get("rule") not in RULES or set(spec) - {"rule", "floor"}:
        raise ValueError(f"{where}: must be {{rule: one of {list(RULES)}, floor: number}}")
    rule = spec["rule"]
    if rule == "multiplier":
        if "floor" in spec:
            raise ValueError(f"{where}: a multiplier takes no floor")
        if value < 1:
            raise ValueError(f"{where}: a multiplier must be at least 1, got {value:g}")
        return Scale(rule)
    floor = spec.get("floor")
    if isinstance(floor, bool) or not isinstance(floor, int | float) or not 0 <= floor <= value:
        raise ValueError(f"{where}: a {rule} needs a floor between 0 and its value {value:g}")
    return Scale(rule, float(floor))
