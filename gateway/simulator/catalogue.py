"""The facilities the simulated service reaches, grouped by region."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from importlib import resources


@dataclass(frozen=True)
class Facility:
    id: str
    name: str
    region: str
    accepts_photos: bool
    max_pages: int | None
    max_photos: int

    @property
    def photo_limit(self) -> int:
        return self.max_photos if self.accepts_photos else 0

    def as_json(self) -> dict:
        body = asdict(self)
        del body["region"]
        return body


class Catalogue:
    def __init__(self, facilities: list[Facility]) -> None:
        self._by_id = {f.id: f for f in facilities}
        self._regions: dict[str, list[Facility]] = {}
        for facility in facilities:
            self._regions.setdefault(facility.region, []).append(facility)

    def get(self, facility_id: str) -> Facility | None:
        return self._by_id.get(facility_id)

    def as_json(self) -> dict:
        return {
            "regions": [
                {"name": region, "facilities": [f.as_json() for f in facilities]}
                for region, facilities in self._regions.items()
            ]
        }

    @classmethod
    def default(cls) -> Catalogue:
        text = resources.files(__package__).joinpath("catalogue.json").read_text("utf-8")
        return cls.from_dicts(json.loads(text)["regions"])

    @classmethod
    def from_dicts(cls, items: list[dict]) -> Catalogue:
        """Accept regions (`{"name", "facilities": [...]}`) or flat facilities with a `region`."""
        facilities: list[Facility] = []
        for item in items:
            if "facilities" in item:
                facilities.extend(_facility(f, item["name"]) for f in item["facilities"])
            else:
                facilities.append(_facility(item, item.get("region", "")))
        return cls(facilities)


def _facility(item: dict, region: str) -> Facility:
    accepts = bool(item.get("accepts_photos", False))
    return Facility(
        id=str(item["id"]),
        name=str(item["name"]),
        region=region,
        accepts_photos=accepts,
        max_pages=item.get("max_pages"),
        max_photos=int(item.get("max_photos", 0) if accepts else 0),
    )
