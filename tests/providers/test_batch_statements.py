"""A batch's `IN` list as one array parameter on PostgreSQL (gateway.db.one_of): the same
rows as `IN` on both databases, and on PostgreSQL one statement text for every batch size,
so that psycopg converts it once and the server can prepare it."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from gateway.db import make_engine, one_of
from gateway.models import Suppression

pytestmark = pytest.mark.perf

BOTH = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def suppressed(db_url: str) -> sessionmaker[Session]:
    factory = sessionmaker(make_engine(db_url), expire_on_commit=False)
    with factory() as session:
        session.add_all(Suppression(address_hash=f"h{i:03d}", reason="opted_out")
                        for i in range(80))
        session.commit()
    return factory


@BOTH
@pytest.mark.parametrize("wanted", [
    [], ["h001"], ["h005", "nobody", "h005"], [f"h{i:03d}" for i in range(0, 160, 2)]],
    ids=["none", "one", "repeated-and-unknown", "over-fifty"])
def test_one_of_finds_what_in_finds(suppressed, wanted):
    with suppressed() as session:
        by_in = set(session.scalars(select(Suppression.id).where(
            Suppression.address_hash.in_(wanted))))
        by_one_of = set(session.scalars(select(Suppression.id).where(
            one_of(session, Suppression.address_hash, wanted))))
        ids = sorted(by_in)
        by_ids = set(session.scalars(select(Suppression.id).where(
            one_of(session, Suppression.id, ids))))
    assert by_one_of == by_in == by_ids
    assert len(by_in) == len({w for w in wanted if w.startswith("h") and w < "h080"})


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_on_postgresql_every_batch_size_sends_the_same_statement(suppressed):
    sent: list[tuple[str, object]] = []
    with suppressed() as session:
        engine = session.get_bind()

        def capture(_conn, _cursor, statement, parameters, _context, _many):
            sent.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", capture)
        try:
            for size in (3, 50, 51, 200):
                session.scalars(select(Suppression.id).where(
                    one_of(session, Suppression.id, range(1, size + 1)),
                    Suppression.reason == "opted_out")).all()
        finally:
            event.remove(engine, "before_cursor_execute", capture)
    assert len({statement for statement, _ in sent}) == 1
    assert "ANY" in sent[0][0] and " IN " not in sent[0][0]
    # Two parameters whatever the size: the array and the reason (psycopg caches the
    # conversion of a statement of at most 50).
    assert {len(parameters) for _, parameters in sent} == {2}
