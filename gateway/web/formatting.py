"""Jinja filters for the dashboard: ages, times and money, short, unambiguous and in the
reader's language (Babel: "7 дек. 2026, 04:04", "1 234,50 ₽")."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import flask
from flask_babel import format_currency, format_date, format_decimal, get_locale
from flask_babel import format_datetime as _format_datetime
from flask_babel import gettext as _

from gateway.models import utcnow
from gateway.web.accounts import role_allows
from gateway.web.context import current_user
from gateway.web.labels import label

# Day, month as a word, year: no 12/07 vs 07/12 doubt in either language.
_WHEN = "d MMM y, HH:mm"


def age(value: datetime | timedelta | None) -> str:
    """'45 s', '12 min', '5 h', '3 d' (or 'с', 'мин', 'ч', 'дн'): how long ago (or how long)."""
    if value is None:
        return "—"
    delta = value if isinstance(value, timedelta) else utcnow() - value
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return _("%(n)d s", n=seconds)
    if seconds < 3600:
        return _("%(n)d min", n=seconds // 60)
    if seconds < 172800:
        return _("%(n)d h", n=seconds // 3600)
    return _("%(n)d d", n=seconds // 86400)


def when(value: datetime | None) -> str:
    # Stored times are UTC; the dashboard has no organization time zone setting, so it says so.
    if not value:
        return "—"
    return _format_datetime(value, _WHEN, rebase=False) + " UTC"


def day(value: date | datetime | None, pattern: str = "d MMMM y") -> str:
    """A calendar day in words ('5 мая 2026'); 'd MMMM' for a birthday without the year."""
    if not value:
        return "—"
    return format_date(value, pattern)


def clock(value: datetime | None, seconds: bool = False) -> str:
    if not value:
        return "—"
    return value.strftime("%H:%M:%S" if seconds else "%H:%M")


def money(value: Decimal | float | None, currency: str | None = "RUB") -> str:
    if value is None:
        return "—"
    if currency == "₽":  # some templates pass the sign; Babel wants the code
        currency = "RUB"
    if not currency:
        return format_decimal(Decimal(value), format="#,##0.00")
    text = format_currency(Decimal(value), currency)
    # English CLDR writes the ruble as "RUB400.00"; the sign reads better and matches Russian.
    return text.replace("RUB", "₽") if currency == "RUB" else text


def number(value: int | float | None) -> str:
    return "—" if value is None else format_decimal(value)


def register_filters(app: flask.Flask) -> None:
    for f in (age, when, day, clock, money, number):
        app.add_template_filter(f)
    app.add_template_global(label)

    @app.context_processor
    def _globals():
        user = current_user()
        return {
            "user": user,
            "can": lambda role: user is not None and role_allows(user.role, role),
            "locale": str(get_locale()),
        }
