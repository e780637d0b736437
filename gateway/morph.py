"""One Russian pymorphy3 analyzer per process, shared by the rules (lemmas of risky words)
and the name matching (every case of a prisoner's name). Each analyzer holds its own copy
of the dictionaries (~20-25 MB); built once in the worker parent by `rules.warm_up()`, the
children share it copy-on-write."""

from __future__ import annotations

from functools import cache

import pymorphy3


@cache
def analyzer() -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer(lang="ru")
