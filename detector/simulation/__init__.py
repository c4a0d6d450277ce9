"""Generator B ("fleet"): a second synthetic KMS traffic generator, with its threat catalogue as data.

``families.yaml`` lists the attack and benign families (who acts, what the log shows, how strength
scales them); :func:`detector.simulation.fleet.generate` simulates a multi-region organisation
and injects them into a labelled test span.
"""

from __future__ import annotations

from detector.simulation.families import Family, Scale, load_families, parse_families
from detector.simulation.fleet import GENERATOR, generate

__all__ = ["GENERATOR", "Family", "Scale", "generate", "load_families", "parse_families"]
