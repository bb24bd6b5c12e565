"""What the de-identification did, as text and JSON: actions, counts, drops, options; never a value."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class AnonymizeReport:
    edition: str
    options: list[str]
    settings: dict
    objects: Counter = field(default_factory=Counter)  # what was de-identified, by kind
    changes: Counter = field(default_factory=Counter)  # (attribute keyword, action) -> count
    dropped: Counter = field(default_factory=Counter)  # what was left out, by reason
    warnings: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)  # input/output counts and time

    def as_json(self) -> dict:
        by_action: Counter = Counter()
        for (_attribute, action), count in self.changes.items():
            by_action[action] += count
        return {
            "profile": "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile",
            "table_edition": self.edition,
            "options": self.options,
            "settings": self.settings,
            "objects": dict(sorted(self.objects.items())),
            "attributes_changed": sum(self.changes.values()),
            "by_action": dict(sorted(by_action.items())),
            "attributes": [
                {"attribute": attribute, "action": action, "count": count}
                for (attribute, action), count in sorted(self.changes.items())
            ],
            "dropped": dict(sorted(self.dropped.items())),
            "warnings": self.warnings,
            "figures": self.figures,
        }

    def text_lines(self) -> list[str]:
        data = self.as_json()
        lines = [f"de-identified per {data['profile']}, Table E.1-1 edition {self.edition}",
                 f"options applied: {', '.join(self.options) or 'none (the Basic Profile alone)'}",
                 "settings: " + ", ".join(f"{key}={value}" for key, value in self.settings.items())]
        for key, value in self.figures.items():
            lines.append(f"{key}: {value}")
        lines.append("objects: " + (", ".join(f"{count} {kind}" for kind, count in data["objects"].items())
                                    or "none"))
        lines.append(f"attributes changed: {data['attributes_changed']} "
                     f"({', '.join(f'{action} {count}' for action, count in data['by_action'].items())})")
        lines.append("  (X removed, Z emptied or dummy, D dummy, U UID remapped, C cleaned, "
                     "U (not in table): unregistered UID in another attribute)")
        width = max((len(item["attribute"]) for item in data["attributes"]), default=0)
        for item in data["attributes"]:
            lines.append(f"  {item['attribute']:<{width}}  {item['action']:<10} {item['count']}")
        if self.dropped:
            lines.append("dropped:")
            lines.extend(f"  {count} {reason}" for reason, count in data["dropped"].items())
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        return lines
