"""Synthetic, labelled KMS traffic from two generators written apart from each other.

``classic`` (:func:`detector.simulation.classic.simulate`) draws Poisson traffic per key with nine
attack kinds and two benign surprises. ``fleet`` (:func:`detector.simulation.fleet.generate`) simulates
a multi-region organisation and injects the attack and benign families that ``families.yaml`` lists
(who acts, what the log shows, how strength scales them). Both return a
:class:`~detector.simulation.result.Simulation`; :mod:`detector.simulation.suite` runs both.
"""

from __future__ import annotations

from detector.simulation.families import Family, Scale, load_families, parse_families
from detector.simulation.fleet import GENERATOR, generate

__all__ = ["GENERATOR", "Family", "Scale", "generate", "load_families", "parse_families"]
