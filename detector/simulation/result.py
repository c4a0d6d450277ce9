"""What a traffic generator returns: labelled history and test logs and a key catalog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detector.domain.events import Event


@dataclass(slots=True)
class Simulation:
    """Generated history and test logs (each sorted by time), their labels and a key catalog."""

    history: list[Event]
    test: list[Event]
    labels: dict[str, Any]
    catalog: dict[str, Any]
    label_event_ids: dict[str, list[str]] = field(default_factory=dict)
