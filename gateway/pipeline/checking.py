"""Read a stored message, find its prisoner, weigh it, render it: one step per letter.

Every outcome is a state with a reason; the writer gets a kind notice where one is due,
and robots get none.

A batch is read together (its letters and messages in one query, their parse in one round
trip to the bounded parser, its writers and their recent letters in one query each), then
each letter is decided in order exactly as if alone: what one letter changes (a writer's
count, a confirmation, its own state) is seen by the next. The session then writes the
batch at commit, not after every letter."""

from __future__ import annotations

import functools
import logging
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from gateway import faults
from gateway.crypto import address_hash, seal
from gateway.formatting import render_letter, writer_first_name
from gateway.intake import writers
from gateway.intake.addressing import Candidate, resolve_recipient
from gateway.lifecycle import claim, move
from gateway.mail.authentication import Authentication, authenticate
from gateway.mail.parse import (
    ParsedLetter,
    UnparseableMessage,
    parse_many_bounded,
    parse_message_bounded,
)
from gateway.models import (
    InboundMessage,
    Letter,
    LetterAttachment,
    LetterEvent,
    OutboundMail,
    Prisoner,
    Sender,
    utcnow,
)
from gateway.notices import notice_answered, queue_notice
from gateway.pricing import quote
from gateway.providers.profiles import load_profiles
from gateway.providers.registry import profile_name_for
from gateway.rules import run_rules
from gateway.rules.base import Decision, LetterDraft, RuleSettings
from gateway.states import LetterState as S

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    ready: list[int] = field(default_factory=list)
    mail: list[int] = field(default_factory=list)  # outbound mail ids to send


def directory(session: Session) -> tuple[list[Candidate], dict[int, Prisoner]]:
    """Who can be written to, and their rows (kept: the letters found for them need them)."""
    since = utcnow().replace(day=1)  # "lately": letters this month
    counts = dict(session.execute(
        select(Letter.prisoner_id, func.count()).where(Letter.created_at >= since,
                                                        Letter.prisoner_id.is_not(None))
        .group_by(Letter.prisoner_id)).all())
    prisoners = {p.id: p for p in session.scalars(
        select(Prisoner).where(Prisoner.status != "retired"))}
    return [
        Candidate(id=p.id, last_name=p.last_name, first_name=p.first_name,
                  middle_name=p.middle_name, birth_year=p.birth_year,
                  facility_name=p.facility_name, code=p.code, can_receive=p.can_receive,
                  letters_recent=counts.get(p.id, 0))
        for p in prisoners.values()
    ], prisoners


def check_letters(session: Session, letter_ids: list[int], settings) -> CheckResult:
    """Check a batch; the caller commits once and then publishes the result.

    Letters a confirmation releases are checked in the same call (appended to the batch)."""
    result = CheckResult()
    batch = _Batch(session, settings)
    queue = deque(letter_ids)
    while queue:
        letter_id = queue.popleft()
        letter, parsed = batch.take(letter_id, queue)
        if letter is None or letter.state != S.RECEIVED:
            continue  # someone else did it, or it moved on: tasks are idempotent
        if isinstance(parsed, UnparseableMessage):
            move(session, letter, S.QUARANTINED, note=f"could not read the message: {parsed.reason}")
            continue
        if parsed.automated:
            move(session, letter, S.IGNORED, note=f"automated mail: {parsed.automated}")
            continue
        if not parsed.sender:
            move(session, letter, S.QUARANTINED, note="no single, valid sender address")
            continue
        _take_writer(letter, parsed, batch)
        sender = batch.sender(letter.sender_hash)
        commands = writers.read_commands(parsed.subject, parsed.text)
        if commands.stop:
            writers.opt_out(session, letter.sender_hash)
            move(session, letter, S.IGNORED, note="the writer asked to stop all mail")
            batch.hold(_release_waiting(session, letter.sender_hash, confirmed=False))
            continue
        if commands.start:
            writers.opt_in(session, letter.sender_hash)
        if commands.pseudonym:
            sender.pseudonym = commands.pseudonym
        if sender.pseudonym:
            letter.writer_name = sender.pseudonym
        answered = batch.answered(letter, parsed)
        if _confirms(sender, parsed, answered, settings):
            writers.confirm(sender)
            released = batch.hold(_release_waiting(session, letter.sender_hash, confirmed=True))
            queue.extend(released)
            if _only_confirmation(parsed, answered, commands.text):
                move(session, letter, S.IGNORED, note="the writer confirmed their address "
                     f"({len(released)} letter(s) released)")
                continue
        resolution = resolve_recipient(
            parsed.subject, commands.text, parsed.recipients, batch.candidates(),
            answered_prisoner=_prisoner_of(session, answered))
        letter.body = resolution.text
        if resolution.kind == "not_found" and (commands.start or commands.pseudonym) \
                and not resolution.text.strip():
            move(session, letter, S.IGNORED, note="a command from the writer, not a letter")
            continue
        if resolution.kind == "not_found":
            move(session, letter, S.REJECTED, note="recipient not found in the directory")
            result.mail += queue_notice(session, settings, letter, "unknown_recipient",
                                        parsed=parsed)
            continue
        if resolution.kind == "ambiguous":
            move(session, letter, S.REJECTED, note="several prisoners match the name")
            result.mail += queue_notice(session, settings, letter, "ambiguous_recipient",
                                        parsed=parsed, candidates=resolution.candidates)
            continue
        prisoner_id = resolution.prisoner_id
        if resolution.kind == "anyone" and letter.prisoner_id is not None:
            prisoner_id = letter.prisoner_id  # chosen before the writer confirmed: keep it
        if prisoner_id is None:  # "to anyone", and nobody can receive now
            move(session, letter, S.HELD, note="written to anyone, but no prisoner can receive "
                 "letters now; an organizer chooses")
            continue
        prisoner = batch.prisoner(prisoner_id)
        letter.prisoner_id = prisoner.id
        letter.provider = prisoner.provider
        if _must_confirm(session, letter, sender, parsed, settings):
            if writers.is_suppressed(session, letter.sender_hash):
                move(session, letter, S.HELD, note="the writer has not confirmed their address "
                     "and has asked for no mail, so cannot be asked to; a person decides")
                continue
            move(session, letter, S.AWAITING_SENDER, note=_confirm_note(parsed, sender, settings))
            token = writers.new_token()
            queued = queue_notice(session, settings, letter, "confirm", parsed=parsed,
                                  token_shown=writers.show_token(token))
            if queued:  # else today's notice already carries a token that still works
                writers.set_token(sender, batch.secret, token, settings.confirm_token_days)
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
        render(letter, prisoner, settings)
        decision = weigh(session, letter, prisoner, parsed, batch.rule_settings, settings,
                         previous=batch.previous_texts(letter), spent=batch.month_spent())
        letter.findings = [f.to_dict() for f in decision.findings]
        if decision.outcome == "return":
            move(session, letter, S.REJECTED, note="returned to the writer: " +
                 "; ".join(f.reason_organizer for f in decision.findings if f.severity == "return"))
            result.mail += queue_notice(session, settings, letter, "returned", parsed=parsed,
                                        findings=decision.findings)
            continue
        reasons = [f for f in decision.findings if f.severity == "hold"]
        today = writers.count_letter(sender)
        if today > settings.sender_daily_limit:
            reasons.append(_over_limit(settings.sender_daily_limit))
        if decision.outcome == "hold" or reasons:
            move(session, letter, S.HELD, note="held for a person: " +
                 "; ".join(f.reason_organizer for f in reasons))
            result.mail += queue_notice(session, settings, letter, "held", parsed=parsed,
                                        findings=reasons)
            continue
        move(session, letter, S.READY, note="checked and rendered")
        result.ready.append(letter.id)
        # No 'received' notice now: the sweeper queues one only if the letter is still not
        # sent after received_notice_after_s (notices.queue_late_received).
    faults.point("check.before_commit")
    return result


# Messages up to this size are read and parsed with their batch; a larger one alone, at its
# turn (25 of them at 30 MB must not sit in memory together).
_INLINE_BYTES = 1024 * 1024
HISTORY = 20  # the writer's latest letters to the prisoner the duplicate rule compares with
_NOT_HISTORY = (S.REJECTED, S.DISCARDED, S.IGNORED)
# The batch's history query keeps memory bounded: bodies longer than this, and the whole
# answer past this many rows, are read one letter at a time instead.
_HISTORY_MAX_CHARS = 20_000
_HISTORY_MAX_ROWS = 500
_LONG = object()  # a body too long for the batch query


@functools.cache
def _history_query():
    """Built once: a window query costs more to build than to run."""
    rank = func.row_number().over(partition_by=(Letter.prisoner_id, Letter.sender_hash),
                                  order_by=Letter.id.desc()).label("rank")
    length = func.length(Letter.body).label("length")
    body = case((length <= _HISTORY_MAX_CHARS, Letter.body)).label("body")
    ranked = select(Letter.id, Letter.prisoner_id, Letter.sender_hash, body, length,
                    rank).where(Letter.sender_hash.in_(bindparam("writers", expanding=True)),
                                Letter.prisoner_id.is_not(None),
                                Letter.state.not_in(_NOT_HISTORY)).subquery()
    return (select(ranked.c.id, ranked.c.prisoner_id, ranked.c.sender_hash, ranked.c.body,
                   ranked.c.length).where(ranked.c.rank <= bindparam("per_pair"))
            .limit(_HISTORY_MAX_ROWS + 1))


class _Batch:
    """What check_letters reads once a batch rather than once a letter.

    Everything it hands out is what the per-letter query would return at that moment: the
    batch's own letters are read from this session (where their changes are), and the rows
    it does not change are read once. Work another worker commits meanwhile may be missed
    for a batch's duration (as it could be for a query's)."""

    def __init__(self, session: Session, settings) -> None:
        self.session, self.settings = session, settings
        self.secret = settings.secret_key.get_secret_value()
        self.own = frozenset({settings.gateway_address.lower(),
                              settings.org_reply_email.lower()})
        self.rule_settings = RuleSettings.from_mapping({
            "disabled": [r for r in settings.rules_disabled.split(",") if r.strip()],
            "monthly_budget": settings.monthly_budget_rub,
        })
        # Strong references: the identity map is weak, and every letter this batch changes
        # must stay readable here (previous_texts reads them from memory).
        self.letters: dict[int, Letter] = {}
        self._parsed: dict[int, ParsedLetter | UnparseableMessage | None] = {}  # None: large
        self._hashes: dict[str, str] = {}  # address -> address_hash
        self._senders: dict[str, Sender] = {}
        self._answered: dict[int, OutboundMail | None] = {}
        self._history: dict[tuple[int, str], dict[int, object]] = {}
        self._history_truncated: set[tuple[int, str]] = set()
        self._history_writers: set[str] = set()  # writers whose history is read
        self._directory: tuple[list[Candidate], dict[int, Prisoner]] | None = None
        self._spent: Decimal | None = None

    # -- letters and their messages ------------------------------------------------------

    def take(self, letter_id: int, upcoming) -> tuple[Letter | None, object]:
        """The letter and its parse (ParsedLetter or UnparseableMessage); the first call
        reads this letter and the ones queued after it together."""
        known = self.letters.get(letter_id)
        if letter_id not in self._parsed and (known is None or known.state == S.RECEIVED):
            self._prepare([letter_id, *upcoming])
        letter = self.letters.get(letter_id)
        if letter is None or letter.state != S.RECEIVED:
            return letter, None
        parsed = self._parsed.pop(letter_id)  # once: a released letter is read afresh
        if parsed is None:  # too large to read with the batch
            inbound = self.session.get(InboundMessage, letter.inbound_id)
            try:
                parsed = parse_message_bounded(inbound.raw, own_addresses=self.own)
            except UnparseableMessage as exc:
                parsed = exc
        return letter, parsed

    def _prepare(self, ids: list[int]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i not in self._parsed and
               (i not in self.letters or self.letters[i].state == S.RECEIVED)]
        raw = case((func.length(InboundMessage.raw) <= _INLINE_BYTES, InboundMessage.raw))
        # Locked in id order: a second worker handed the same letter waits, then sees where
        # this one left it.
        rows = self.session.execute(
            select(Letter, raw).join(InboundMessage, InboundMessage.id == Letter.inbound_id)
            .where(Letter.id.in_(ids)).order_by(Letter.id).with_for_update(of=Letter)).all()
        inline: list[tuple[int, bytes]] = []
        for letter, data in rows:
            self.letters[letter.id] = letter
            if letter.state != S.RECEIVED:
                continue
            self._parsed[letter.id] = None
            if data is not None:
                inline.append((letter.id, data))
        del rows
        results = parse_many_bounded([data for _, data in inline], own_addresses=self.own)
        fresh: dict[int, tuple[str, ParsedLetter]] = {}
        for (letter_id, _), parsed in zip(inline, results, strict=True):
            self._parsed[letter_id] = parsed
            if isinstance(parsed, ParsedLetter) and parsed.sender and not parsed.automated:
                fresh[letter_id] = (self.address_hash(parsed.sender), parsed)
        writers_ = {h for h, _ in fresh.values()} - self._senders.keys()
        self._senders |= writers.senders_for(self.session, writers_)
        self._read_answered(fresh)
        self._read_history({h for h, _ in fresh.values()} - self._history_writers)
        if fresh:
            # Read now, before any letter changes: the same as at the first letter's turn
            # (no letter of the batch has a new prisoner before then), and no flush between.
            self.candidates()

    def hold(self, letters: list[Letter]) -> list[int]:
        """Letters the batch loaded itself (released by a confirmation): kept, their ids."""
        for letter in letters:
            self.letters[letter.id] = letter
        return [letter.id for letter in letters]

    def address_hash(self, address: str) -> str:
        if address not in self._hashes:
            self._hashes[address] = address_hash(self.secret, address)
        return self._hashes[address]

    # -- writers -------------------------------------------------------------------------

    def sender(self, writer: str) -> Sender:
        found = self._senders.get(writer)
        if found is None:
            found = self._senders[writer] = writers.sender_for(self.session, writer)
        writers.seen(found)
        return found

    def _read_answered(self, fresh: dict[int, tuple[str, ParsedLetter]]) -> None:
        asking = {i: (h, p.in_reply_to[:100]) for i, (h, p) in fresh.items() if p.in_reply_to}
        if not asking:
            return
        ids = {m for _, mids in asking.values() for m in mids}
        rows = list(self.session.scalars(select(OutboundMail).where(
            OutboundMail.message_id.in_(sorted(ids)),
            OutboundMail.writer_hash.in_(sorted({h for h, _ in asking.values()})))))
        for letter_id, (writer, mids) in asking.items():
            matches = [r for r in rows if r.writer_hash == writer and r.message_id in mids]
            self._answered[letter_id] = max(matches, key=lambda r: r.id, default=None)

    def answered(self, letter: Letter, parsed: ParsedLetter) -> OutboundMail | None:
        """notice_answered, from the batch's one query where it was asked."""
        if letter.id in self._answered:
            return self._answered.pop(letter.id)
        return notice_answered(self.session, parsed.in_reply_to, letter.sender_hash)

    # -- prisoners -----------------------------------------------------------------------

    def candidates(self) -> list[Candidate]:
        if self._directory is None:
            self._directory = directory(self.session)
        return self._directory[0]

    def prisoner(self, prisoner_id: int) -> Prisoner:
        if self._directory is not None and prisoner_id in self._directory[1]:
            return self._directory[1][prisoner_id]
        return self.session.get(Prisoner, prisoner_id)

    # -- what the rules compare with -----------------------------------------------------

    def _read_history(self, writers_: set[str]) -> None:
        """The latest letters of these writers to each prisoner: enough of them per pair
        that the batch's own letters, read from memory instead, cannot push out one of the
        HISTORY that count."""
        if not writers_:
            return
        self._history_writers |= writers_
        per_pair = HISTORY + len(self.letters) + 5
        rows = self.session.execute(_history_query(), {
            "writers": sorted(writers_), "per_pair": per_pair}).all()
        if len(rows) > _HISTORY_MAX_ROWS:
            self._history_writers -= writers_  # too much to hold: one query a letter
            return
        for letter_id, prisoner_id, writer, text, size in rows:
            pair = (prisoner_id, writer)
            group = self._history.setdefault(pair, {})
            group[letter_id] = _LONG if size is not None and text is None else text
            if len(group) >= per_pair:
                self._history_truncated.add(pair)

    def previous_texts(self, letter: Letter) -> tuple[str, ...]:
        """The bodies of the writer's latest HISTORY letters to this prisoner, newest first
        (not rejected, discarded or ignored): previous_texts() as it would read now."""
        pair = (letter.prisoner_id, letter.sender_hash)
        if letter.sender_hash not in self._history_writers:
            return previous_texts(self.session, letter)
        rows = {i: text for i, text in self._history.get(pair, {}).items()
                if i not in self.letters}
        if pair in self._history_truncated and len(rows) < HISTORY:
            return previous_texts(self.session, letter)  # the rows that count may be beyond
        for other in self.letters.values():
            if other.id != letter.id and (other.prisoner_id, other.sender_hash) == pair \
                    and other.state not in _NOT_HISTORY:
                rows[other.id] = other.body
        latest = sorted(rows, reverse=True)[:HISTORY]
        if any(rows[i] is _LONG for i in latest):
            return previous_texts(self.session, letter)
        return tuple(rows[i] for i in latest if rows[i])

    def month_spent(self) -> Decimal:
        """The month's spend so far: only when a budget is set (a sum over the month)."""
        if self.rule_settings.monthly_budget is None:
            return Decimal(0)
        if self._spent is None:
            month_start = utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            self._spent = Decimal(self.session.scalar(
                select(func.coalesce(func.sum(Letter.price), 0))
                .where(Letter.submitted_at >= month_start)) or 0)
        return self._spent


@dataclass(frozen=True)
class _Reason:
    """A hold reason of the gateway's own, shaped like a rule's Finding for the templates."""
    rule: str
    reason_ru: str
    reason_en: str
    reason_organizer: str
    severity: str = "hold"
    passages: tuple[str, ...] = ()


def _over_limit(limit: int) -> _Reason:
    return _Reason(
        "daily_limit",
        f"сегодня от вас пришло больше {limit} писем — это наш дневной предел на одного "
        "человека; лишние письма не теряются, их отправит организатор",
        f"more than {limit} letters came from you today, our daily limit per writer; the "
        "extra letters are not lost, an organizer will send them",
        f"over the writer's daily limit of {limit} letters")


def _prisoner_of(session: Session, notice) -> int | None:
    if notice is None or notice.letter_id is None:
        return None
    return session.scalar(select(Letter.prisoner_id).where(Letter.id == notice.letter_id))


def _confirms(sender: Sender, parsed: ParsedLetter, answered, settings) -> bool:
    """This message answers our confirm notice, or carries the writer's pending token."""
    if answered is not None and answered.kind == "confirm":
        return True
    return writers.token_matches(sender, settings.secret_key.get_secret_value(),
                                 writers.tokens_in(parsed.subject, parsed.text), utcnow())


def _only_confirmation(parsed: ParsedLetter, answered, text: str) -> bool:
    """An answer to the confirm notice, or a short message with the token, is not a letter."""
    if answered is not None and answered.kind == "confirm":
        return True
    return bool(writers.tokens_in(parsed.subject)) or len(text.strip()) < 200


def _must_confirm(session: Session, letter: Letter, sender: Sender, parsed: ParsedLetter,
                  settings) -> bool:
    if not settings.confirm_senders:
        return False
    if sender.verified_at is not None and _authentication(parsed, settings).verdict != "fail":
        return False  # the common case, decided without the event log
    # Released by the writer's confirmation: never ask twice for one letter.
    return not _confirmed_before(session, letter.id)


def _authentication(parsed: ParsedLetter, settings) -> Authentication:
    return authenticate(parsed.auth_results, own_authserv_id=settings.own_authserv_id,
                        from_domain=(parsed.sender or "").rpartition("@")[2] or None)


def _confirm_note(parsed: ParsedLetter, sender: Sender, settings) -> str:
    if sender.verified_at is None:
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
            move(session, waiting, S.RECEIVED, note="the writer confirmed their address")
        else:
            move(session, waiting, S.HELD, note="the writer asked for no mail before confirming "
                 "their address; a person decides")
        released.append(waiting)
    return released


def _take_writer(letter: Letter, parsed: ParsedLetter, batch: _Batch) -> None:
    letter.sender_sealed = seal(batch.secret, parsed.sender)
    letter.sender_hash = batch.address_hash(parsed.sender)
    letter.writer_name = writer_first_name(parsed.sender_name)
    letter.subject = parsed.subject[:500]


def previous_texts(session: Session, letter: Letter) -> tuple[str, ...]:
    """The bodies of the writer's latest HISTORY letters to this prisoner, newest first."""
    return tuple(t for t in session.scalars(
        select(Letter.body).where(Letter.prisoner_id == letter.prisoner_id,
                                  Letter.sender_hash == letter.sender_hash,
                                  Letter.id != letter.id,
                                  Letter.state.not_in(_NOT_HISTORY))
        .order_by(Letter.id.desc()).limit(HISTORY)) if t)


def weigh(session: Session, letter: Letter, prisoner: Prisoner, parsed: ParsedLetter,
          rule_settings: RuleSettings, settings, *, previous: tuple[str, ...],
          spent: Decimal) -> Decision:
    draft = LetterDraft(
        text=letter.body or "",
        photos=tuple((a.content_type, len(a.data)) for a in parsed.attachments),
        sender=parsed.sender,
        prisoner_status=prisoner.status, prisoner_can_receive=prisoner.can_receive,
        profile=profile_name_for(prisoner.provider), previous_texts=previous,
        month_spent=Decimal(spent),
        rendered_text=letter.rendered, reply_ordered=settings.reply_ordered,
    )
    return run_rules(draft, rule_settings)


def render(letter: Letter, prisoner: Prisoner, settings) -> None:
    letter.rendered = render_letter(prisoner.provider, prisoner=prisoner,
                                    writer_name=letter.writer_name or "Друг",
                                    body=letter.body or "")
    profile = load_profiles().get(profile_name_for(prisoner.provider)) or load_profiles()["http"]
    q = quote(letter.rendered, letter.photos, settings.reply_ordered, profile)
    letter.pages, letter.price, letter.currency = q.pages, q.amount, q.currency


def reclaim(session: Session, letter_id: int) -> Letter | None:
    """Re-drive a quarantined letter from the start (an organizer's action)."""
    return claim(session, letter_id, [S.QUARANTINED], S.RECEIVED, actor="organizer")
