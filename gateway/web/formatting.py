"""Jinja filters for the dashboard: ages, times and money, short and unambiguous."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import flask

from gateway.models import utcnow
from gateway.web.accounts import role_allows
from gateway.web.context import current_user


def age(value: datetime | timedelta | None) -> str:
    """'45 s', '12 min', '5 h', '3 d': how long ago (or how long)."""
    if value is None:
        return "—"
    delta = value if isinstance(value, timedelta) else utcnow() - value
    seconds = max(int(delta.total_seconds()), 0)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def money(value: Decimal | float | None, currency: str | None = "RUB") -> str:
    if value is None:
        return "—"
    return f"{Decimal(value):,.2f}".replace(",", "\u202f") + f" {currency or ''}".rstrip()


def register_filters(app: flask.Flask) -> None:
    app.add_template_filter(age)
    app.add_template_filter(when)
    app.add_template_filter(money)

    @app.context_processor
    def _globals():
        user = current_user()
        return {
            "user": user,
            "can": lambda role: user is not None and role_allows(user.role, role),
        }
