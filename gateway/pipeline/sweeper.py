"""Re-drive anything stuck. Correctness never depends on a task surviving in Redis or on
beat ticking exactly once: whatever the queue lost, the sweeper finds in SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import actions, faults
from gateway.models import Letter, OutboundMail, utcnow
from gateway.states import WAITING_FOR_WRITER
from gateway.states import LetterState as S
from gateway.states import Reason as R

_EXPIRED = {S.AWAITING_SENDER: ("the writer did not confirm their address",
                                R.CONFIRMATION_EXPIRED),
            S.AWAITING_CHOICE: ("the writer did not say which prisoner they meant",
                                R.CHOICE_EXPIRED)}


@dataclass
class Sweep:
    check: list[int] = field(default_factory=list)
    submit: list[int] = field(default_factory=list)
    send: list[int] = field(default_factory=list)
    lost_submissions: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)


def sweep(session: Session, stuck_after_s: float, limit: int = 1000,
          unconfirmed_after_s: float | None = None) -> Sweep:
    now = utcnow()
    stuck = now - timedelta(seconds=stuck_after_s)
    result = Sweep()
    result.check = list(session.scalars(
        select(Letter.id).where(Letter.state == S.RECEIVED, Letter.updated_at <= stuck)
        .order_by(Letter.id).limit(limit)))
    # A worker died mid-submission: the request may have left. Replaying the same
    # idempotency key resolves it without a second charge.
    for letter in session.scalars(
            select(Letter).where(Letter.state == S.SUBMITTING, Letter.updated_at <= stuck)
            .limit(limit)):
        actions.interrupted(session, letter)
        result.lost_submissions.append(letter.id)
    lost_ready = (Letter.state == S.READY) & Letter.next_attempt_at.is_(None) & \
        (Letter.updated_at <= stuck)
    due = Letter.state.in_([S.READY, S.UNKNOWN]) & (Letter.next_attempt_at <= now)
    result.submit = list(session.scalars(
        select(Letter.id).where(lost_ready | due).order_by(Letter.id).limit(limit)))
    result.submit += [i for i in result.lost_submissions if i not in result.submit]
    if unconfirmed_after_s is not None:
        # The writer never confirmed their address: the letter is not ours to send.
        expired = now - timedelta(seconds=unconfirmed_after_s)
        for letter in session.scalars(
                select(Letter).where(Letter.state.in_(WAITING_FOR_WRITER),
                                     Letter.updated_at <= expired).limit(limit)):
            note, code = _EXPIRED[letter.state]
            actions.discard(session, letter, "system", note, code=code)
            result.expired.append(letter.id)
    result.send = list(session.scalars(
        # Due for stuck_after_s: a send task merely waiting in a busy queue is not re-published
        # (and if it were, the send's lease claim would still make it one send).
        select(OutboundMail.id).where(OutboundMail.state == "PENDING",
                                      OutboundMail.next_attempt_at <= stuck)
        .order_by(OutboundMail.id).limit(limit)))
    faults.point("sweep.before_commit")
    return result
