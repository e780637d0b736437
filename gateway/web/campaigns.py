"""Campaigns and letter evenings on the dashboard: create and edit a campaign (prisoners by
hand or by a filter), watch it fill; create an evening and print its table card (address,
QR code, first tips); watch the evening live."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal, InvalidOperation

import flask
import segno
from flask_babel import gettext as _
from flask_babel import ngettext
from markupsafe import Markup
from sqlalchemy import func, select

from gateway import actions, campaign_progress, campaigns, postcards
from gateway import story as story_
from gateway.models import Campaign, Evening, Letter, Prisoner
from gateway.web.auth import requires
from gateway.web.context import actor, audit, db, settings
from gateway.web.labels import N_
from gateway.web.prisoners import neutralize

bp = flask.Blueprint("campaigns", __name__)

FILTER_FIELDS = ("region", "birthday_within_days", "quiet_days", "gender")


@bp.route("/campaigns")
def index():
    session = db()
    letters = dict(session.execute(select(Letter.campaign_id, func.count())
                                   .where(Letter.campaign_id.is_not(None),
                                          Letter.part_of_id.is_(None))
                                   .group_by(Letter.campaign_id)).all())
    rows = [(c, len(c.prisoners), letters.get(c.id, 0)) for c in
            session.scalars(select(Campaign).order_by(Campaign.created_at.desc()))]
    evenings = session.scalars(select(Evening).order_by(Evening.held_on.desc())).all()
    return flask.render_template("dashboard/campaigns.html", rows=rows, evenings=evenings)


def _date(value: str, name: str, errors: list[str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(_("%(field)s must be a date like 2027-03-08", field=_(name)))
        return None


def _int(value: str, name: str, errors: list[str]) -> int | None:
    if not value:
        return None
    if not value.isdigit() or int(value) > 3660:
        errors.append(_("%(field)s must be a number of days", field=_(name)))
        return None
    return int(value)


def read_form(form) -> tuple[dict, campaigns.Filter | None, list[int], list[str]]:
    errors: list[str] = []
    values = {
        "title": form.get("title", "").strip(),
        "tag": campaigns.normalize_tag(form.get("tag", "")),
        "starts_on": _date(form.get("starts_on", "").strip(), N_("start"), errors),
        "ends_on": _date(form.get("ends_on", "").strip(), N_("end"), errors),
        "guidance": form.get("guidance", "").strip(),
        "greeting_template": form.get("greeting_template", "").strip() or None,
    }
    if not values["title"]:
        errors.append(_("title is required"))
    if not campaigns.valid_tag(values["tag"]):
        errors.append(_("tag: 2 to 40 letters, digits, - or _, starting with a letter or digit"))
    budget = form.get("budget_rub", "").strip().replace(",", ".")
    try:
        values["budget_rub"] = Decimal(budget) if budget else None
    except InvalidOperation:
        errors.append(_("budget must be a sum in rubles"))
    if values["starts_on"] and values["ends_on"] and values["ends_on"] < values["starts_on"]:
        errors.append(_("the campaign ends before it starts"))
    rule = campaigns.Filter(
        region=form.get("region", "").strip() or None,
        birthday_within_days=_int(form.get("birthday_within_days", "").strip(),
                                  "birthday window", errors),
        quiet_days=_int(form.get("quiet_days", "").strip(), "days without a letter", errors),
        gender=form.get("gender", "").strip() or None)
    chosen = [int(i) for i in form.getlist("prisoner") if i.isdigit()]
    return values, (rule if rule.as_dict() else None), chosen, errors


@bp.route("/campaigns/new", methods=["GET", "POST"])
@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@requires("moderator")
def edit(campaign_id: int | None = None):
    session = db()
    campaign = session.get(Campaign, campaign_id) if campaign_id else None
    if campaign_id and campaign is None:
        flask.abort(404)
    errors: list[str] = []
    if flask.request.method == "POST":
        values, rule, chosen, errors = read_form(flask.request.form)
        other = session.scalar(select(Campaign.id).where(Campaign.tag == values["tag"]))
        if (other is not None and (campaign is None or other != campaign.id)) or \
                session.scalar(select(Evening.id).where(Evening.code == values["tag"])):
            errors.append(_("the tag %(tag)s is already used", tag=values["tag"]))
        if rule is not None:
            chosen = [p.id for p in campaigns.choose(session, rule, date.today())]
        if not chosen:
            errors.append(_("choose the prisoners: tick them, or give a filter that finds some"))
        if not errors:
            if campaign is None:
                campaign = Campaign(created_by=actor())
                session.add(campaign)
            for k, v in values.items():
                setattr(campaign, k, v)
            campaign.chosen_by = rule.as_dict() if rule else None
            session.flush()
            campaigns.set_prisoners(session, campaign, chosen)
            audit("edit_campaign", detail=f"{campaign.tag}: {len(chosen)} prisoners")
            session.commit()
            flask.flash(ngettext("Saved “%(title)s” for %(num)d prisoner.",
                                 "Saved “%(title)s” for %(num)d prisoners.", len(chosen),
                                 title=campaign.title), "ok")
            return flask.redirect(flask.url_for("campaigns.show", campaign_id=campaign.id))
    if flask.request.method == "POST":
        form, ticked = flask.request.form, {int(i) for i in flask.request.form.getlist("prisoner")
                                            if i.isdigit()}
    elif campaign is not None:
        form = {k: "" if getattr(campaign, k) is None else getattr(campaign, k)
                for k in ("title", "tag", "starts_on", "ends_on", "guidance",
                          "greeting_template", "budget_rub")} | (campaign.chosen_by or {})
        ticked = {p.id for p in campaign.prisoners}
    else:
        form, ticked = {}, set()
    prisoners = session.scalars(select(Prisoner).where(Prisoner.status != "retired")
                                .order_by(Prisoner.last_name, Prisoner.id)).all()
    return flask.render_template("dashboard/campaign_form.html", campaign=campaign, form=form,
                                 errors=errors, prisoners=prisoners, ticked=ticked)


@bp.route("/campaigns/<int:campaign_id>")
def show(campaign_id: int):
    campaign = db().get(Campaign, campaign_id) or flask.abort(404)
    return flask.render_template("dashboard/campaign.html", campaign=campaign,
                                 address=campaigns.plus_address(settings().gateway_address,
                                                                campaign.tag),
                                 postcards=postcards.savings(db(), campaign_id=campaign.id),
                                 **_campaign_live(campaign))


@bp.route("/campaigns/<int:campaign_id>/postcards/close", methods=["POST"])
@requires("moderator")
def close_campaign_postcards(campaign_id: int):
    campaign = db().get(Campaign, campaign_id) or flask.abort(404)
    _close_postcards(campaign_id=campaign.id)
    return flask.redirect(flask.url_for("campaigns.show", campaign_id=campaign.id))


@bp.route("/evenings/<int:evening_id>/postcards/close", methods=["POST"])
@requires("moderator")
def close_evening_postcards(evening_id: int):
    found = db().get(Evening, evening_id) or flask.abort(404)
    _close_postcards(evening_id=found.id)
    return flask.redirect(flask.url_for("campaigns.evening", evening_id=found.id))


def _close_postcards(**scope) -> None:
    """An organizer sends the open postcards now (the evening is over, the room has left).
    The letters are due now: the sweeper submits them within its interval."""
    session = db()
    made = [actions.close_postcard(session, settings(), pid, actor=actor(),
                                   why="closed by an organizer")
            for pid in postcards.open_ids(session, **scope)]
    sent = [m for m in made if m is not None]
    audit("close_postcards", detail=f"{len(sent)} postcard(s) closed")
    session.commit()
    flask.flash(ngettext("%(num)d postcard closed; it will be submitted shortly.",
                         "%(num)d postcards closed; they will be submitted shortly.",
                         len(sent)), "ok")


@bp.route("/campaigns/<int:campaign_id>/live")
def campaign_live(campaign_id: int):
    campaign = db().get(Campaign, campaign_id) or flask.abort(404)
    return flask.render_template("dashboard/_campaign_live.html", campaign=campaign,
                                 **_campaign_live(campaign))


def _campaign_live(campaign: Campaign) -> dict:
    c, people = campaign_progress.progress(db(), campaign.id)
    return {"c": c, "people": people}


# -- what the letters have done ------------------------------------------------------------

@bp.route("/story")
def story():
    session = db()
    return flask.render_template("dashboard/story.html", figures=story_.figures(session),
                                 stories=story_.stories(session))


STORY_COLUMNS = ("code", "name", "status", "letters_sent", "replies", "last_sent",
                 "last_reply", "campaigns")


@bp.route("/story.csv")
@requires("moderator")
def story_csv():
    """Per prisoner, for the group's report. Audited like the directory's export; cells are
    neutralized so a name cannot become a spreadsheet formula."""
    session = db()
    rows = story_.stories(session)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(STORY_COLUMNS)
    for s in rows:
        values = (s.code, s.name, s.status, s.letters_sent, s.replies,
                  s.last_sent.date().isoformat() if s.last_sent else "",
                  s.last_reply.date().isoformat() if s.last_reply else "",
                  "; ".join(s.campaigns))
        writer.writerow([neutralize(str(v)) for v in values])
    audit("export_story", detail=f"{len(rows)} prisoners")
    session.commit()
    response = flask.make_response(out.getvalue().encode("utf-8-sig"))
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = 'attachment; filename="story.csv"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- letter evenings -------------------------------------------------------------------------

@bp.route("/evenings/new", methods=["GET", "POST"])
@requires("moderator")
def new_evening():
    session = db()
    errors: list[str] = []
    form = flask.request.form
    if flask.request.method == "POST":
        city, place = form.get("city", "").strip(), form.get("place", "").strip()
        held_on = _date(form.get("held_on", "").strip(), N_("date"), errors)
        campaign_id = form.get("campaign_id", "")
        campaign = session.get(Campaign, int(campaign_id)) if campaign_id.isdigit() else None
        if not city:
            errors.append(_("city is required"))
        if held_on is None and not errors:
            errors.append(_("date is required"))
        if not errors:
            evening = Evening(code=campaigns.new_evening_code(session), city=city[:100],
                              place=place[:200], held_on=held_on,
                              campaign_id=campaign.id if campaign else None,
                              created_by=actor())
            session.add(evening)
            session.flush()
            audit("create_evening", detail=f"{evening.code}: {city}, {held_on}")
            session.commit()
            flask.flash(_("The evening's code is %(code)s.", code=evening.code), "ok")
            return flask.redirect(flask.url_for("campaigns.evening", evening_id=evening.id))
    choices = session.scalars(select(Campaign).order_by(Campaign.created_at.desc())).all()
    return flask.render_template("dashboard/evening_form.html", form=form, errors=errors,
                                 campaigns=choices)


@bp.route("/evenings/<int:evening_id>")
def evening(evening_id: int):
    found = db().get(Evening, evening_id) or flask.abort(404)
    return flask.render_template("dashboard/evening.html", evening=found,
                                 address=_evening_address(found),
                                 postcards=postcards.savings(db(), evening_id=found.id),
                                 c=campaign_progress.counts(db(), evening_id=found.id))


@bp.route("/evenings/<int:evening_id>/live")
def evening_live(evening_id: int):
    found = db().get(Evening, evening_id) or flask.abort(404)
    return flask.render_template("dashboard/_evening_live.html", evening=found,
                                 c=campaign_progress.counts(db(), evening_id=found.id))


@bp.route("/evenings/<int:evening_id>/print")
def evening_print(evening_id: int):
    found = db().get(Evening, evening_id) or flask.abort(404)
    address = _evening_address(found)
    out = io.BytesIO()
    # An SVG element in the page, not an <img>: the page prints offline, CSP stays strict.
    segno.make(f"mailto:{address}", error="m").save(out, kind="svg", scale=6, border=2,
                                                     xmldecl=False, svgns=True)
    return flask.render_template("dashboard/evening_print.html", evening=found,
                                 address=address, qr=Markup(out.getvalue().decode()))


def _evening_address(evening: Evening) -> str:
    return campaigns.plus_address(settings().gateway_address, evening.code)
