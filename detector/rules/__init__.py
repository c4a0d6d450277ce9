"""Explainable rule detectors: one module each, registered here in the order they run."""

from __future__ import annotations

from detector.rules import (
    caller_volume,
    denied_burst,
    impossible_travel,
    new_geography,
    new_network,
    new_operation,
    new_principal,
    object_harvest,
    off_hours,
    operation_mix,
    rate_drift,
    seasonal_volume,
    unusual_admin,
    volume_spike,
)
from detector.rules.base import KeyRule, PrincipalRule, RuleContext

KEY_RULES: dict[str, KeyRule] = {
    new_geography.NAME: new_geography.check,
    impossible_travel.NAME: impossible_travel.check,
    volume_spike.NAME: volume_spike.check,
    rate_drift.NAME: rate_drift.check,
    seasonal_volume.NAME: seasonal_volume.check,
    caller_volume.NAME: caller_volume.check,
    unusual_admin.NAME: unusual_admin.check,
    denied_burst.NAME: denied_burst.check,
    off_hours.NAME: off_hours.check,
    new_principal.NAME: new_principal.check,
    new_operation.NAME: new_operation.check,
    operation_mix.NAME: operation_mix.check,
}
PRINCIPAL_RULES: dict[str, PrincipalRule] = {
    denied_burst.PROBING: denied_burst.check_principal,
    object_harvest.NAME: object_harvest.check,
    new_network.NAME: new_network.check,
}
DETECTORS: tuple[str, ...] = (*KEY_RULES, *PRINCIPAL_RULES, "isolation_forest")

__all__ = ["DETECTORS", "KEY_RULES", "PRINCIPAL_RULES", "RuleContext"]
