"""Read a stored message, find its prisoner, weigh it, render it: one step per letter.

Every outcome is a state with a reason; the writer gets a kind notice where one is due,
and robots get none.

A batch is read together (check_batch.py: its letters and messages in one query, their
parse in one round trip to the bounded parser, its writers and their recent letters in one
query each), then each letter is decided in order exactly as if alone: what one letter
changes (a writer's count, a confirmation, its own state) is seen by the next. The session
then writes the batch at commit, not after every letter."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from gateway import actions, birthday_reminders, campaigns, faults, postcards
from gateway.crypto import keyring
from gateway.formatting import render_letter, writer_first_name
from gateway.guidance.answer import answer_guidance_request
from gateway.guidance.requests import asks_for_guidance
from gateway.intake import writers
from gateway.intake.addressing import Candidate, Resolution, read_choice, resolve_recipient
from gateway.mail.authentication import Authentication, authenticate
from gateway.mail.parse import ParsedLetter, UnparseableMessage
from gateway.models import Letter, LetterAttachment, LetterEvent, Prisoner, Sender, utcnow
from gateway.notices import queue_notice, unproven_own_domain
from gateway.pipeline import splitting
from gateway.pipeline.budget_holds import HELD_PREFIX
from gateway.pipeline.check_batch import CheckBatch
from gateway.pricing import quote
from gateway.providers.catalogue import FacilityLimits
from gateway.providers.services import Route, UnknownService, route
from gateway.rules import run_rules
from gateway.rules.base import Decision, Finding, LetterDraft, PastCensorship, RuleSettings
from gateway.states import LetterState as S
from gateway.states import NoticeKind as N
from gateway.states import Reason as R

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    ready: list[int] = field(default_factory=list)
    mail: list[int] = field(default_factory=list)  # outbound mail ids to send


def check_letters(session: Session, letter_ids: list[int], settings) -> CheckResult:
    """Check a batch; the caller commits once and then publishes the result.

    Letters a confirmation releases are checked in the same call (appended to the batch)."""
    result = CheckResult()
    batch = CheckBatch(session, settings)
    gathers: dict[tuple, bool] = {}  # (campaign, evening): does it gather postcards
    queue = deque(letter_ids)
    while queue:
        letter_id = queue.popleft()
        letter, parsed = batch.take(letter_id, queue)
        if letter is None or letter.state != S.RECEIVED:
            continue  # someone else did it, or it moved on: tasks are idempotent
        if isinstance(parsed, UnparseableMessage):
            actions.quarantine(session, letter, f"could not read the message: {parsed.reason}",
                               R.UNREADABLE)
            continue
        if parsed.automated:
            actions.ignore(session, letter, f"automated mail: {parsed.automated}", R.AUTOMATED)
            continue
        if not parsed.sender:
            actions.quarantine(session, letter, "no single, valid sender address", R.NO_SENDER)
            continue
        if parsed.unreadable:  # a person looks; never "recipient not found" for garbage
            actions.quarantine(session, letter, f"could not read the text: {parsed.unreadable}",
                               R.UNREADABLE)
            continue
        _take_writer(letter, parsed, batch)
        unproven = unproven_own_domain(parsed, settings)
        if unproven:
            letter.sender_sealed = None  # never written to: no notice, no forwarded reply
        sender = batch.sender(letter.sender_hash)
        if sender.address_sealed is None:  # kept while the writer is active (retention)
            sender.address_sealed = letter.sender_sealed
        commands = writers.read_commands(parsed.subject, parsed.text)
        if commands.stop:
            writers.opt_out(session, letter.sender_hash)
            actions.ignore(session, letter, "the writer asked to stop all mail", R.WRITER_STOPPED)
            batch.hold(_release_waiting(session, letter.sender_hash, confirmed=False))
            continue
        if commands.start:
            writers.opt_in(session, letter.sender_hash)
        if commands.pseudonym:
            sender.pseudonym = commands.pseudonym
        if sender.pseudonym:
            letter.writer_name = sender.pseudonym
        if birthday_reminders.wants_subscription(campaigns.tags_in(
                parsed.subject, parsed.recipients, settings.gateway_address)):
            result.mail += birthday_reminders.handle(session, settings, letter, parsed,
                                                     commands.text)
            continue
        answered = batch.answered(letter, parsed)
        if _confirms(sender, parsed, answered, settings):
            writers.confirm(sender)
            released = batch.hold(_release_waiting(session, letter.sender_hash, confirmed=True))
            queue.extend(released)
            if _only_confirmation(parsed, answered, commands.text):
                actions.ignore(session, letter, "the writer confirmed their address "
                               f"({len(released)} letter(s) released)", R.CONFIRMATION_ONLY)
                continue
        if parsed.document_problem:
            reason_en, reason_ru = parsed.document_problem
            result.mail += actions.return_to_writer(
                session, settings, letter, note="the letter is in an attachment that cannot "
                f"be read: {reason_en}", code=R.DOCUMENT_UNREADABLE,
                kind=N.DOCUMENT_UNREADABLE, parsed=parsed, reason_en=reason_en,
                reason_ru=reason_ru)
            continue
        waiting = _waiting_for_choice(session, letter, answered,
                                      short=len(commands.text.strip()) < 200)
        if waiting is not None:
            chosen = read_choice(parsed.subject, commands.text, _choices(waiting, batch))
            if chosen is not None:
                waiting.prisoner_id = chosen.id
                actions.back_to_checks(session, waiting, note="the writer chose the prisoner "
                                       f"{chosen.code or chosen.id} (answer in letter "
                                       f"{letter.id})", code=R.CHOICE_MADE)
                queue.extend(batch.hold([waiting]))
                if _only_an_answer(commands.text, replied=answered is not None):
                    actions.ignore(session, letter, "the writer's answer naming the prisoner "
                                   f"of letter {waiting.id}, not a letter", R.CHOICE_MADE)
                    continue
        if not (commands.start or commands.pseudonym) and asks_for_guidance(
                parsed.subject, commands.text, len(parsed.attachments)):
            joined = batch.joined(campaigns.tags_in(parsed.subject, parsed.recipients,
                                                    settings.gateway_address))
            result.mail += answer_guidance_request(
                session, settings, letter, parsed,
                campaign_id=joined.campaign_id if joined is not None else None)
            continue
        subject, recipients, outside = _join_campaign(letter, parsed, batch, settings)
        resolution = resolve_recipient(
            subject, commands.text, recipients, batch.candidates(),
            answered_prisoner=_prisoner_of(session, answered), notes=parsed.forward_notes)
        letter.body = resolution.text
        if resolution.kind == "not_found" and (commands.start or commands.pseudonym) \
                and not resolution.text.strip():
            actions.ignore(session, letter, "a command from the writer, not a letter",
                           R.WRITER_COMMAND)
            continue
        # A campaign named outside its dates still tells whom the writer meant.
        pool = batch.campaign_pool(letter.campaign_id or (outside and outside[0]))
        if resolution.kind == "not_found" and len(pool) == 1:
            # A campaign for one person (a birthday): writing to it is writing to them.
            resolution = Resolution("found", pool[0].id, (pool[0],), resolution.text)
        if resolution.kind == "not_found":
            result.mail += actions.return_to_writer(
                session, settings, letter, note="recipient not found in the directory",
                code=R.RECIPIENT_NOT_FOUND, kind=N.UNKNOWN_RECIPIENT, parsed=parsed)
            continue
        prisoner_id = resolution.prisoner_id
        if resolution.kind == "ambiguous" and letter.prisoner_id in \
                {c.id for c in resolution.candidates}:
            prisoner_id = letter.prisoner_id  # the writer chose among them in their answer
        elif resolution.kind == "ambiguous":
            # Never a guess: the letter waits (nothing is paid) until the writer says who.
            letter.findings = [_choice_finding(resolution.candidates, resolution.conflict)]
            result.mail += actions.ask_which_prisoner(
                session, settings, letter, note=_choice_note(resolution), parsed=parsed,
                candidates=resolution.candidates, conflict=resolution.conflict)
            continue
        if resolution.kind == "anyone" and letter.prisoner_id is not None:
            prisoner_id = letter.prisoner_id  # chosen before the writer confirmed: keep it
        elif resolution.kind == "anyone":
            # Inside a campaign, "anyone" means anyone of its prisoners.
            chosen = batch.claim_anyone(pool or batch.candidates())
            prisoner_id = chosen.id if chosen is not None else None
        if prisoner_id is None:  # "to anyone", and nobody can receive now
            actions.hold(session, settings, letter, note="written to anyone, but no prisoner "
                         "can receive letters now; an organizer chooses",
                         code=R.NOBODY_CAN_RECEIVE, notify=False)
            continue
        prisoner = batch.prisoner(prisoner_id)
        if letter.prisoner_id != prisoner.id:
            batch.assigned(prisoner.id)
        letter.prisoner_id = prisoner.id
        try:
            way = route(prisoner.provider, settings)
        except UnknownService as exc:
            actions.hold(session, settings, letter, note=f"the directory's service: {exc}",
                         code=R.NOT_IN_CATALOGUE, notify=False)
            continue
        letter.provider, letter.service = way.adapter, way.service
        if _must_confirm(session, letter, sender, parsed, settings):
            if writers.is_suppressed(session, letter.sender_hash):
                actions.hold(session, settings, letter, note="the writer has not confirmed "
                             "their address and has asked for no mail, so cannot be asked to; "
                             "a person decides", code=R.UNCONFIRMED_NO_MAIL, notify=False)
                continue
            if unproven:
                actions.hold(session, settings, letter, note="from an address of our own "
                             "domain that its authentication did not prove, so it is not "
                             "asked to confirm; a person decides", code=R.UNPROVEN_OWN_DOMAIN,
                             notify=False)
                continue
            actions.await_writer(session, letter, _confirm_note(parsed, sender, settings))
            token = writers.new_token()
            queued = queue_notice(session, settings, letter, "confirm", parsed=parsed,
                                  token_shown=writers.show_token(token))
            if queued:  # else today's notice already carries a token that still works
                writers.set_token(sender, batch.keys, token, settings.confirm_token_days)
            result.mail += queued
            continue
        for att in parsed.attachments:
            session.add(LetterAttachment(letter_id=letter.id, filename=att.filename,
                                         content_type=att.content_type, data=att.data))
        letter.photos = len(parsed.attachments)
        # Written even when unchanged: the session sends one UPDATE for a run of letters
        # only while they set the same columns.
        flag_modified(letter, "photos")
        # Render first: pages and price are weighed on exactly what the provider will print.
        render(letter, prisoner, settings, way)
        facility = batch.facility(way.adapter, prisoner.facility_id)
        rule_settings, campaign_spent = batch.rule_settings, None
        if (campaign_budget := batch.campaign_budget(letter.campaign_id)) is not None:
            rule_settings = replace(rule_settings, campaign_budget=campaign_budget[0])
            campaign_spent = campaign_budget[1]
        decision = weigh(session, letter, prisoner, parsed, rule_settings, settings, way,
                         previous=batch.previous_texts(letter), spent=batch.month_spent(),
                         facility=facility, campaign_spent=campaign_spent,
                         censored=batch.censor_history(prisoner.facility_id))
        parts = _plan_split(letter, prisoner, decision, way, facility, settings)
        if parts:
            decision = splitting.as_split(decision, len(parts))
        letter.findings = [f.to_dict() for f in decision.findings]
        if outside:  # the received and sent notices tell the writer (notices.py)
            letter.findings.append(outside[1].to_dict())
        greeting = not parts and _greeting(session, letter, resolution, way, settings, gathers)
        if greeting:  # on record, so that an approval after a hold still gathers it
            letter.findings = [*letter.findings, postcards.FINDING]
        if decision.outcome == "return":
            limits_only = _only_limits(decision)
            result.mail += actions.return_to_writer(
                session, settings, letter, parsed=parsed, findings=decision.findings,
                code=R.FACILITY_LIMITS if limits_only else R.RULES_RETURN,
                note="returned to the writer: " + "; ".join(
                    f.reason_organizer for f in decision.findings if f.severity == "return"),
                facility_limits=limits_only)
            continue
        reasons = [f for f in decision.findings if f.severity == "hold"]
        today = writers.count_letter(sender)
        if today > settings.sender_daily_limit:
            reasons.append(_over_limit(settings.sender_daily_limit))
        if decision.outcome == "hold" or reasons:
            campaign_only = all((f.rule, getattr(f, "code", None)) == ("budget", "campaign")
                                for f in reasons)
            result.mail += actions.hold(
                session, settings, letter, parsed=parsed, findings=reasons,
                code=R.CAMPAIGN_BUDGET_HOLD if reasons and campaign_only else R.RULES_HOLD,
                note=HELD_PREFIX + "; ".join(f.reason_organizer for f in reasons))
            continue
        batch.spent_in_campaign(letter.campaign_id, letter.price)  # the whole, split or not
        if parts:
            ready, mail = actions.split(session, settings, letter, prisoner, parts, way,
                                        parsed=parsed, limit=splitting.page_limit(
                                            way.profile, facility))
            result.ready += ready
            result.mail += mail
            continue
        if greeting:  # with its prisoner's postcard; a full postcard closes now
            result.ready += actions.gather(session, settings, letter, way, facility=facility)
            continue
        if actions.checked(session, letter, way):  # else straight to the desk or the post
            result.ready.append(letter.id)
        # No 'received' notice now: the sweeper queues one only if the letter is still not
        # sent after received_notice_after_s (notices.queue_late_received).
    faults.point("check.before_commit")
    return result


def _join_campaign(letter: Letter, parsed: ParsedLetter, batch: CheckBatch, settings
                   ) -> tuple[str, tuple[str, ...], tuple[int, Finding] | None]:
    """Record the campaign or evening the letter's tag names; the subject and recipients
    without that tag, for addressing; and, for a campaign named before its start or after
    its end, that campaign and the note for the writer: the letter goes on as an ordinary
    one (campaigns.dates_finding), never lost for being late."""
    found = batch.joined(campaigns.tags_in(parsed.subject, parsed.recipients,
                                           settings.gateway_address))
    if found is None:
        return parsed.subject, tuple(parsed.recipients), None
    letter.campaign_id, letter.evening_id = found.campaign_id, found.evening_id
    outside = None
    if found.campaign_id is not None:
        title, starts_on, ends_on = batch.campaign_dates(found.campaign_id)
        when = campaigns.outside_dates(starts_on, ends_on, utcnow().date())
        if when is not None:
            letter.campaign_id = None
            outside = (found.campaign_id, campaigns.dates_finding(title, when))
    return (*campaigns.without_tag(parsed.subject, parsed.recipients, found.tag), outside)


def _greeting(session: Session, letter: Letter, resolution: Resolution, way: Route, settings,
              gathers: dict[tuple, bool]) -> bool:
    scope = (letter.campaign_id, letter.evening_id)
    if scope == (None, None):
        return False
    if scope not in gathers:
        gathers[scope] = postcards.gathers(session, *scope)
    return postcards.is_greeting(letter.body or "", photos=letter.photos or 0,
                                 anyone=resolution.kind == "anyone", gathers=gathers[scope],
                                 human_carried=way.human_carried,
                                 max_chars=settings.postcard_max_chars)


def _over_limit(limit: int) -> actions.Because:
    return actions.Because(
        f"сегодня от вас пришло больше {limit} писем — это наш дневной предел на одного "
        "человека; лишние письма не теряются, их отправит организатор",
        f"more than {limit} letters came from you today, our daily limit per writer; the "
        "extra letters are not lost, an organizer will send them",
        f"over the writer's daily limit of {limit} letters", rule="daily_limit", severity="hold")


def _choice_finding(candidates: tuple[Candidate, ...], conflict: bool) -> dict:
    """The choices the notice listed, in its order: the writer's "2" means the second."""
    return {"rule": "recipient", "severity": "ask", "candidates": [c.id for c in candidates],
            "conflict": conflict, "passages": [],
            "reason_organizer": "the writer is asked which prisoner they mean"}


def _choice_note(resolution) -> str:
    who = ", ".join(c.code or str(c.id) for c in resolution.candidates)
    why = "the addressing sources name different prisoners" if resolution.conflict \
        else "several prisoners match the name"
    return f"{why} ({who}); waiting for the writer to say which"


def _waiting_for_choice(session: Session, letter: Letter, answered, *,
                        short: bool) -> Letter | None:
    """The writer's letter waiting for them to name its prisoner that this message answers:
    a reply to our question about it, or (a client that drops In-Reply-To) the writer's only
    such letter, when this message is short enough to be an answer rather than a letter."""
    if answered is not None and answered.kind == "ambiguous_recipient" and answered.letter_id:
        found = session.get(Letter, answered.letter_id)
        return found if found is not None and found.state == S.AWAITING_CHOICE else None
    if answered is not None or not letter.sender_hash or not short:
        return None
    waiting = list(session.scalars(select(Letter).where(
        Letter.sender_hash == letter.sender_hash, Letter.state == S.AWAITING_CHOICE,
        Letter.id != letter.id).limit(2)))
    return waiting[0] if len(waiting) == 1 else None


def _only_an_answer(text: str, *, replied: bool) -> bool:
    """Nothing but the answer: short for a reply to our question; for a new message (matched
    only by its writer) one short line with no sentence in it ("2", "Петру Сергеевичу"), so a
    short letter that names the prisoner is still checked as a letter."""
    text = text.strip()
    if replied:
        return len(text) < 200
    return len(text) < 50 and "\n" not in text and not any(c in text for c in "!?")


def _choices(waiting: Letter, batch: CheckBatch) -> list[Candidate]:
    ids = next((f.get("candidates") for f in waiting.findings or ()
                if f.get("rule") == "recipient"), None) or []
    by_id = {c.id: c for c in batch.candidates()}
    return [by_id[i] for i in ids if i in by_id]


def _prisoner_of(session: Session, notice) -> int | None:
    if notice is None or notice.letter_id is None:
        return None
    return session.scalar(select(Letter.prisoner_id).where(Letter.id == notice.letter_id))


def _confirms(sender: Sender, parsed: ParsedLetter, answered, settings) -> bool:
    """This message answers our confirm notice, or carries the writer's pending token."""
    if answered is not None and answered.kind == "confirm":
        return True
    return writers.token_matches(sender, keyring(settings), (parsed.subject, parsed.text),
                                 utcnow())


def _only_confirmation(parsed: ParsedLetter, answered, text: str) -> bool:
    """An answer to the confirm notice, or a short message with the token, is not a letter."""
    if answered is not None and answered.kind == "confirm":
        return True
    return bool(writers.tokens_in(parsed.subject)) or len(text.strip()) < 200


def _must_confirm(session: Session, letter: Letter, sender: Sender, parsed: ParsedLetter,
                  settings) -> bool:
    # Two defences, each with its own setting: a writer never seen before, and a letter
    # their domain did not vouch for (someone may be writing in their name).
    new_writer = settings.confirm_senders and sender.verified_at is None
    if not new_writer and not (settings.confirm_failed_authentication and
                               _authentication(parsed, settings).verdict == "fail"):
        return False  # the common case, decided without the event log
    # Released by the writer's confirmation: never ask twice for one letter.
    return not _confirmed_before(session, letter.id)


def _authentication(parsed: ParsedLetter, settings) -> Authentication:
    return authenticate(parsed.auth_results, own_authserv_id=settings.own_authserv_id,
                        from_domain=(parsed.sender or "").rpartition("@")[2] or None)


def _confirm_note(parsed: ParsedLetter, sender: Sender, settings) -> str:
    if sender.verified_at is None and settings.confirm_senders:
        return "waiting for the writer to confirm their address (first letter)"
    return ("waiting for the writer to confirm this letter: their domain did not vouch for "
            f"it ({_authentication(parsed, settings).detail})")


def _confirmed_before(session: Session, letter_id: int) -> bool:
    return session.scalar(select(LetterEvent.id).where(
        LetterEvent.letter_id == letter_id, LetterEvent.from_state == S.AWAITING_SENDER,
        LetterEvent.to_state == S.RECEIVED).limit(1)) is not None


def _release_waiting(session: Session, sender_hash: str, *, confirmed: bool) -> list[Letter]:
    """The writer's letters waiting for confirmation go back to the checks (confirmed) or
    to a person (the writer opted out, so they can never confirm)."""
    released: list[Letter] = []
    for waiting in session.scalars(select(Letter).where(
            Letter.sender_hash == sender_hash, Letter.state == S.AWAITING_SENDER)
            .order_by(Letter.id)):
        if confirmed:
            actions.back_to_checks(session, waiting)
        else:
            actions.hold(session, None, waiting, note="the writer asked for no mail before "
                         "confirming their address; a person decides",
                         code=R.UNCONFIRMED_NO_MAIL, notify=False)
        released.append(waiting)
    return released


def _take_writer(letter: Letter, parsed: ParsedLetter, batch: CheckBatch) -> None:
    letter.sender_sealed = batch.keys.seal(parsed.sender)
    letter.sender_hash = batch.address_hash(parsed.sender)
    letter.writer_name = writer_first_name(parsed.sender_name)
    letter.subject = parsed.subject[:500]


def weigh(session: Session, letter: Letter, prisoner: Prisoner, parsed: ParsedLetter,
          rule_settings: RuleSettings, settings, way: Route, *, previous: tuple[str, ...],
          spent: Decimal, facility: FacilityLimits = FacilityLimits(),  # noqa: B008
          censored: tuple[PastCensorship, ...] = (),
          campaign_spent: Decimal | None = None) -> Decision:
    draft = LetterDraft(
        text=letter.body or "",
        photos=tuple((a.content_type, len(a.data)) for a in parsed.attachments),
        sender=parsed.sender,
        prisoner_status=prisoner.status, prisoner_can_receive=prisoner.can_receive,
        prisoner_wants_letters=prisoner.wants_letters is not False,
        profile=way.service, previous_texts=previous,
        month_spent=Decimal(spent), campaign_spent=campaign_spent,
        rendered_text=letter.rendered, reply_ordered=settings.reply_ordered,
        # The facility's own limits, as its provider's catalogue was last synced.
        **facility.draft_fields(),
        censor_history=censored, facility_name=prisoner.facility_name,
    )
    return run_rules(draft, rule_settings)


def _only_limits(decision: Decision) -> bool:
    """Returned only for what the facility takes (pages, photos), not for the censor."""
    return all(f.rule in ("length", "photos") for f in decision.findings
               if f.severity == "return")


def _plan_split(letter: Letter, prisoner: Prisoner, decision: Decision, way: Route,
                facility: FacilityLimits, settings) -> list[tuple[str, str]] | None:
    """Parts that each fit the facility, when the organization splits long letters and
    the length is the only thing in the way; else None (the letter is returned)."""
    if settings.split_max_parts < 2 or not splitting.splittable(decision):
        return None
    return splitting.plan(letter.body or "", splitting.renderer(
        prisoner, way.adapter, letter.writer_name or "Друг"), way.profile, facility,
        settings.split_max_parts)


def render(letter: Letter, prisoner: Prisoner, settings, way: Route) -> None:
    letter.rendered = render_letter(way.adapter, prisoner=prisoner,
                                    writer_name=letter.writer_name or "Друг",
                                    body=letter.body or "")
    q = quote(letter.rendered, letter.photos, settings.reply_ordered, way.profile)
    letter.pages, letter.price, letter.currency = q.pages, q.amount, q.currency


def reclaim(session: Session, letter_id: int) -> Letter | None:
    """Re-drive a quarantined letter from the start (an organizer's action)."""
    return actions.redrive(session, letter_id)
