"""What check_letters reads once a batch rather than once a letter.

A batch's letters and messages come in one locked query and are parsed in one round trip
to the bounded parser; its writers, the notices they answer and their recent letters are
one query each; the directory is read once. Each answer is what the per-letter query would
return at that letter's turn."""

from __future__ import annotations

import functools
from datetime import date
from decimal import Decimal

from sqlalchemy import String, any_, bindparam, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.types import ARRAY

from gateway import campaigns
from gateway.crypto import BytesSealingError, keyring
from gateway.db import one_of
from gateway.intake import writers
from gateway.intake.addressing import Candidate, least_written
from gateway.mail.bounded import parse_many_bounded, parse_message_bounded
from gateway.mail.parse import ParsedLetter, UnparseableMessage
from gateway.models import (
    Campaign,
    InboundMessage,
    Letter,
    OutboundMail,
    Prisoner,
    Sender,
    utcnow,
)
from gateway.notices import notice_answered
from gateway.pipeline.budget_holds import campaign_committed
from gateway.pipeline.statuses import censored_facilities, recent_censorships
from gateway.providers.catalogue import Catalogues, FacilityLimits
from gateway.rules.base import PastCensorship, RuleSettings
from gateway.states import LetterState as S


def _month_start():
    return utcnow().replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def letter_counts(session: Session, prisoner_ids: list[int]) -> dict[int, int]:
    """Letters these prisoners have had lately (this month), including this transaction's own."""
    return dict(session.execute(
        select(Letter.prisoner_id, func.count())
        .where(Letter.created_at >= _month_start(), Letter.prisoner_id.in_(prisoner_ids))
        .group_by(Letter.prisoner_id)).all())


def directory(session: Session) -> tuple[tuple[Candidate, ...], dict[int, Prisoner]]:
    """Who can be written to, and their rows (kept: the letters found for them need them).
    A tuple: every letter of the batch is addressed against this one object, which
    addressing recognizes without comparing it again (addressing._last).

    Without each prisoner's count of letters: an "anyone" letter is given to a prisoner by
    CheckBatch.claim_anyone, which counts the pool's letters under its lock, so the
    snapshot's count only fed a proposal set aside. Counting the month's letters for every
    batch cost a scan that grew with the month (13 ms a batch at 50,000 letters)."""
    prisoners = {p.id: p for p in session.scalars(
        select(Prisoner).where(Prisoner.status != "retired"))}
    return tuple(
        Candidate(id=p.id, last_name=p.last_name, first_name=p.first_name,
                  middle_name=p.middle_name, birth_year=p.birth_year,
                  facility_name=p.facility_name, code=p.code,
                  # "Anyone" letters go only to people known to be in custody: not to the
                  # released, the moved or those whose status a person must first check;
                  # nor to those who asked for a pause in letters.
                  can_receive=p.can_receive and p.status == "in_custody"
                  and p.wants_letters is not False,
                  region=p.region or "")
        for p in prisoners.values()
    ), prisoners


def previous_texts(session: Session, letter: Letter) -> tuple[str, ...]:
    """The bodies of the writer's latest HISTORY letters to this prisoner, newest first."""
    return tuple(t for t in session.scalars(
        select(Letter.body).where(Letter.prisoner_id == letter.prisoner_id,
                                  Letter.sender_hash == letter.sender_hash,
                                  Letter.id != letter.id,
                                  Letter.state.not_in(_NOT_HISTORY))
        .order_by(Letter.id.desc()).limit(HISTORY)) if t)


# Messages up to this size are read and parsed with their batch, up to this many bytes for
# the batch; a larger one, or one past the batch's bytes, alone at its turn (a batch of
# messages at 30 MB, or of fifty at 1 MB, must not sit in memory together).
_INLINE_BYTES = 1024 * 1024
_BATCH_INLINE_BYTES = 8 * 1024 * 1024
HISTORY = 20  # the writer's latest letters to the prisoner the duplicate rule compares with
_NOT_HISTORY = (S.REJECTED, S.DISCARDED, S.IGNORED)
# The batch's history query keeps memory bounded: bodies longer than this, and the whole
# answer past this many rows, are read one letter at a time instead.
_HISTORY_MAX_CHARS = 20_000
_HISTORY_MAX_ROWS = 500
_LONG = object()  # a body too long for the batch query


@functools.cache
def _history_query(postgresql: bool):
    """Built once: a window query costs more to build than to run. The writers are one
    array parameter on PostgreSQL (see gateway.db.one_of)."""
    of_writers = Letter.sender_hash == any_(bindparam("writers", type_=ARRAY(String))) \
        if postgresql else Letter.sender_hash.in_(bindparam("writers", expanding=True))
    rank = func.row_number().over(partition_by=(Letter.prisoner_id, Letter.sender_hash),
                                  order_by=Letter.id.desc()).label("rank")
    length = func.length(Letter.body).label("length")
    body = case((length <= _HISTORY_MAX_CHARS, Letter.body)).label("body")
    ranked = select(Letter.id, Letter.prisoner_id, Letter.sender_hash, body, length,
                    rank).where(of_writers, Letter.prisoner_id.is_not(None),
                                Letter.state.not_in(_NOT_HISTORY)).subquery()
    return (select(ranked.c.id, ranked.c.prisoner_id, ranked.c.sender_hash, ranked.c.body,
                   ranked.c.length).where(ranked.c.rank <= bindparam("per_pair"))
            .limit(_HISTORY_MAX_ROWS + 1))


class CheckBatch:
    """What check_letters reads once a batch rather than once a letter.

    Everything it hands out is what the per-letter query would return at that moment: the
    batch's own letters are read from this session (where their changes are), and the rows
    it does not change are read once. Work another worker commits meanwhile may be missed
    for a batch's duration (as it could be for a query's)."""

    def __init__(self, session: Session, settings) -> None:
        self.session, self.settings = session, settings
        self.keys = keyring(settings)
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
        self._directory: tuple[tuple[Candidate, ...], dict[int, Prisoner]] | None = None
        self._spent: Decimal | None = None
        self._catalogues = Catalogues(session)
        self._censored: dict[str, tuple[PastCensorship, ...]] = {}
        self._censoring: frozenset[str] | None = None
        # Live letter counts of the prisoners this batch holds locked for "anyone" choices.
        self._claimed: dict[int, int] = {}
        self._joined: dict[tuple[str, ...], campaigns.Joined | None] = {}
        self._pools: dict[int, list[Candidate]] = {}
        self._campaign_spend: dict[int, tuple[Decimal, Decimal] | None] = {}
        self._dates: dict[int, tuple[str, date | None, date | None]] = {}

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
                parsed = parse_message_bounded(self._open(inbound.raw), own_addresses=self.own)
            except UnparseableMessage as exc:
                parsed = exc
        return letter, parsed

    def _prepare(self, ids: list[int]) -> None:
        ids = [i for i in dict.fromkeys(ids) if i not in self._parsed and
               (i not in self.letters or self.letters[i].state == S.RECEIVED)]
        # Locked in id order: a second worker handed the same letter waits, then sees where
        # this one left it. The sizes first (read from the stored length, not the bytes),
        # then the messages that fit the batch.
        rows = self.session.execute(
            select(Letter, Letter.inbound_id, func.length(InboundMessage.raw))
            .join(InboundMessage, InboundMessage.id == Letter.inbound_id)
            .where(one_of(self.session, Letter.id, ids)).order_by(Letter.id)
            .with_for_update(of=Letter)).all()
        batch_bytes, wanted = 0, {}
        for letter, inbound_id, size in rows:
            self.letters[letter.id] = letter
            if letter.state != S.RECEIVED:
                continue
            self._parsed[letter.id] = None  # read alone at its turn, unless read below
            if size is not None and size <= _INLINE_BYTES \
                    and batch_bytes + size <= _BATCH_INLINE_BYTES:
                batch_bytes += size
                wanted[inbound_id] = letter.id
        del rows
        inline: list[tuple[int, bytes]] = []
        stored = dict(self.session.execute(
            select(InboundMessage.id, InboundMessage.raw)
            .where(one_of(self.session, InboundMessage.id, wanted))).tuples().all()) if wanted else {}
        for inbound_id, letter_id in wanted.items():
            try:
                inline.append((letter_id, self._open(stored.pop(inbound_id))))
            except UnparseableMessage as exc:
                self._parsed[letter_id] = exc
        del stored
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

    def _open(self, sealed: bytes) -> bytes:
        try:
            return self.keys.unseal_bytes(sealed)
        except BytesSealingError as exc:  # one letter for a person, never the whole batch
            raise UnparseableMessage(f"the stored message cannot be decrypted: {exc}") from exc

    def hold(self, letters: list[Letter]) -> list[int]:
        """Letters the batch loaded itself (released by a confirmation): kept, their ids."""
        for letter in letters:
            self.letters[letter.id] = letter
        return [letter.id for letter in letters]

    def address_hash(self, address: str) -> str:
        if address not in self._hashes:
            self._hashes[address] = self.keys.address_hash(address)
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

    def candidates(self) -> tuple[Candidate, ...]:
        if self._directory is None:
            self._directory = directory(self.session)
        return self._directory[0]

    def facility(self, adapter: str, facility_id: str) -> FacilityLimits:
        """What the facility takes, from the synced catalogue of the adapter that reaches it
        (only adapters with an API sync one; the others' limits come from their profile)."""
        return self._catalogues.limits(adapter, facility_id)

    def censor_history(self, facility_id: str) -> tuple[PastCensorship, ...]:
        """What this facility's censor stopped lately, newest first (once a facility)."""
        if facility_id not in self._censored:
            # One query tells which facilities have any history at all: most batches reach
            # several facilities and most have none (a query each saved, ~1 ms of CPU).
            if self._censoring is None:
                # Nothing this batch has changed is read here: no flush, so the batch's
                # writes still go out together at commit, however many letters it holds.
                with self.session.no_autoflush:
                    self._censoring = censored_facilities(self.session)
            self._censored[facility_id] = recent_censorships(self.session, facility_id) \
                if facility_id in self._censoring else ()
        return self._censored[facility_id]

    def claim_anyone(self, pool: list[Candidate]) -> Candidate | None:
        """Choose the least-written prisoner of the pool for an "anyone" letter, fairly across
        this batch and concurrent workers: the pool's prisoner rows are locked (in id order,
        so two choosers queue rather than deadlock) until this batch commits, and the counts
        are read after the lock, so they include every other worker's committed choices; the
        batch then counts its own. (SQLite: BEGIN IMMEDIATE already makes one writer at a
        time.)"""
        ids = sorted(c.id for c in pool if c.can_receive)
        missing = [i for i in ids if i not in self._claimed]
        if missing:
            # NO KEY UPDATE for the reason campaign_budget gives: letters pointing at these
            # prisoners hold KEY SHARE on their rows.
            list(self.session.scalars(select(Prisoner.id).where(Prisoner.id.in_(missing))
                                      .order_by(Prisoner.id).with_for_update(key_share=True)))
            fresh = letter_counts(self.session, missing)
            self._claimed.update({i: fresh.get(i, 0) for i in missing})
        return least_written(pool, self._claimed)

    def assigned(self, prisoner_id: int) -> None:
        """A letter of this batch now goes to this prisoner: count it for later choices."""
        if prisoner_id in self._claimed:
            self._claimed[prisoner_id] += 1

    def joined(self, tags: list[str]) -> campaigns.Joined | None:
        """The campaign or evening these tags name (read once a batch: a room's letters
        carry the same tag)."""
        key = tuple(tags)
        if key not in self._joined:
            self._joined[key] = campaigns.joined(self.session, key) if key else None
        return self._joined[key]

    def campaign_dates(self, campaign_id: int) -> tuple[str, date | None, date | None]:
        """The campaign's title, start and end (read once a batch)."""
        if campaign_id not in self._dates:
            self._dates[campaign_id] = tuple(self.session.execute(
                select(Campaign.title, Campaign.starts_on, Campaign.ends_on)
                .where(Campaign.id == campaign_id)).one())
        return self._dates[campaign_id]

    def campaign_pool(self, campaign_id: int | None) -> list[Candidate]:
        """The campaign's prisoners as candidates: the pool its "anyone" letters share."""
        if campaign_id is None:
            return []
        if campaign_id not in self._pools:
            ids = campaigns.pool_ids(self.session, campaign_id)
            self._pools[campaign_id] = [c for c in self.candidates() if c.id in ids]
        return self._pools[campaign_id]

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
        postgresql = self.session.get_bind().dialect.name == "postgresql"
        rows = self.session.execute(_history_query(postgresql), {
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

    def campaign_budget(self, campaign_id: int | None) -> tuple[Decimal, Decimal] | None:
        """(budget, committed) of the letter's campaign, or None when it has no budget.
        Committed is what its letters were paid (submitted) plus what is as good as paid
        (READY, SUBMITTING, UNKNOWN, at the desk), then this batch's own letters as they pass
        (spent_in_campaign). A campaign with a budget has its row locked until the batch
        commits, so a second worker checking the same campaign reads the committed sum
        after this one (PostgreSQL; SQLite has one writer at a time anyway); one without a
        budget is not locked, so its letters are checked in parallel as before."""
        if campaign_id is None:
            return None
        if campaign_id not in self._campaign_spend:
            budget = self.session.scalar(select(Campaign.budget_rub)
                                         .where(Campaign.id == campaign_id))
            if budget is not None:  # read again under the lock: an organizer may change it
                # FOR NO KEY UPDATE (SQLAlchemy's key_share=True), not FOR UPDATE: the
                # batch's letters already point at the campaign, so their foreign keys hold
                # KEY SHARE on its row; two batches each holding that and both asking FOR
                # UPDATE deadlock. NO KEY UPDATE still queues budget checkers (and an
                # organizer's edit) one after another.
                budget = self.session.scalar(select(Campaign.budget_rub).where(
                    Campaign.id == campaign_id).with_for_update(key_share=True))
            if budget is None:
                self._campaign_spend[campaign_id] = None
            else:
                self._campaign_spend[campaign_id] = (Decimal(budget), campaign_committed(
                    self.session, [campaign_id]).get(campaign_id, Decimal(0)))
        return self._campaign_spend[campaign_id]

    def spent_in_campaign(self, campaign_id: int | None, price: Decimal | None) -> None:
        """A letter of this batch passed: its price counts for the campaign's next letters."""
        known = self._campaign_spend.get(campaign_id)
        if known is not None:
            self._campaign_spend[campaign_id] = (known[0], known[1] + Decimal(price or 0))

