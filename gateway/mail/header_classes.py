"""The stdlib's header registry, with each header class made once.

``email.headerregistry.HeaderRegistry`` builds a new class with ``type()`` at every lookup,
for every header read or set; the class depends only on the header's kind, so one per kind
serves every message (however many header names a hostile message invents). The objects it
makes are the stdlib's own: the same values, defects and addresses."""

from __future__ import annotations

from email import policy
from email.headerregistry import HeaderRegistry


class HeaderClasses(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._made: dict[type, type] = {}

    def __getitem__(self, name: str) -> type:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:  # a race makes two equal classes at worst: harmless
            made = self._made[kind] = type("_" + kind.__name__, (kind, self.base_class), {})
        return made


HEADER_CLASSES = HeaderClasses()
# policy.default with the registry above: for messages we parse and messages we write.
POLICY = policy.default.clone(header_factory=HEADER_CLASSES)
