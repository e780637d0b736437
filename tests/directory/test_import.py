"""Importing the groups' published lists: three shapes, re-import, a bad file (the
`gateway` command on a real SQLite file, as an organizer runs it)."""

from __future__ import annotations

from datetime import date
from email import message_from_bytes, policy

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gateway.cli import app
from gateway.config import get_settings
from gateway.models import Prisoner
from tests.directory import lists

pytestmark = pytest.mark.directory


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, tmp_path, monkeypatch):
    """The directory on SQLite and on PostgreSQL (for what a transaction must guarantee)."""
    url = f"sqlite:///{tmp_path / 'gw.db'}" if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    yield from _database(url, monkeypatch)


@pytest.fixture
def db(tmp_path, monkeypatch):
    yield from _database(f"sqlite:///{tmp_path / 'gw.db'}", monkeypatch)


def _database(url, monkeypatch):
    monkeypatch.setenv("GATEWAY_DATABASE_URL", url)
    # Outside SQLite the shipped placeholder secret is refused (rightly).
    monkeypatch.setenv("GATEWAY_SECRET_KEY", "directory-test-secret-0123456789abcdef")
    get_settings.cache_clear()
    from gateway import cli
    monkeypatch.setattr(cli.console, "_width", 250)  # names whole in the tables
    runner = CliRunner()

    def invoke(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == code, result.output
        return result.output

    invoke("db", "upgrade")
    engine = create_engine(url)
    with Session(engine) as session:
        lists.seed_catalogue(session)
        session.commit()
    yield invoke, engine
    engine.dispose()
    get_settings.cache_clear()


def _directory(engine) -> dict[str, Prisoner]:
    with Session(engine, expire_on_commit=False) as session:
        return {p.full_name: p for p in session.scalars(select(Prisoner))}


def _import(invoke, path, *extra, code=0):
    return invoke("prisoners", "import-list", str(path), *extra, code=code)


@pytest.mark.parametrize("shape", ["rs_csv", "ovd_xlsx", "politzek_json"])
def test_every_row_lands_with_its_facility_or_waits_to_be_confirmed(db, tmp_path, shape):
    invoke, engine = db
    extra: tuple[str, ...] = ()
    if shape == "rs_csv":
        path = lists.write_rs_csv(tmp_path / "rs.csv")
        expected, to_confirm = lists.RS_EXPECTED, lists.RS_TO_CONFIRM
    elif shape == "ovd_xlsx":
        path = lists.write_ovd_xlsx(tmp_path / "ovd.xlsx")
        (tmp_path / "ovd.toml").write_text(lists.OVD_MAPPING, encoding="utf-8")
        extra = ("--mapping", str(tmp_path / "ovd.toml"))
        expected, to_confirm = lists.OVD_EXPECTED, lists.OVD_TO_CONFIRM
    else:
        path = lists.write_politzek_json(tmp_path / "politzek.json")
        expected, to_confirm = lists.POLITZEK_EXPECTED, lists.POLITZEK_TO_CONFIRM

    preview = _import(invoke, path, *extra)
    assert "nothing written yet" in preview
    assert _directory(engine) == {}
    for name in to_confirm:
        assert name in preview  # shown in the confirm list, with suggestions

    out = _import(invoke, path, *extra, "--apply")
    assert f"added {len(expected)}" in out
    directory = _directory(engine)
    assert {n: p.facility_id for n, p in directory.items()} == expected
    assert not to_confirm & set(directory)


def test_values_are_read_as_the_lists_write_them(db, tmp_path):
    invoke, engine = db
    _import(invoke, lists.write_rs_csv(tmp_path / "rs.csv"), "--apply")
    (tmp_path / "ovd.toml").write_text(lists.OVD_MAPPING, encoding="utf-8")
    _import(invoke, lists.write_ovd_xlsx(tmp_path / "ovd.xlsx"), "--mapping",
            str(tmp_path / "ovd.toml"), "--apply", "--partial")
    _import(invoke, lists.write_politzek_json(tmp_path / "p.json"), "--apply", "--partial")
    d = _directory(engine)
    ivanov = d["Иванов Иван Иванович"]
    assert (ivanov.birth_date, ivanov.gender, ivanov.interest_tags) == (
        date(1985, 3, 12), "m", ["шахматы", "история"])
    assert (d["Петрова Мария"].birth_year, d["Петрова Мария"].birth_date) == (1992, None)
    assert d["Смирнов Алексей Николаевич"].birth_date == date(1985, 5, 12)  # M/D/YYYY
    assert d["Кузнецова Анна Сергеевна"].birth_date == date(1990, 11, 23)
    assert d["Волков Дмитрий"].birth_date == date(1979, 1, 30)  # a date cell
    fedorova = d["Фёдорова Ольга Игоревна"]
    assert (fedorova.gender, fedorova.interest_tags, fedorova.wants_letters,
            fedorova.status) == ("f", ["книги", "йога"], True, "in_custody")
    assert d["Белов Игорь Петрович"].wants_letters is False
    assert len({p.code for p in d.values()}) == len(d)  # each got its own short code


def test_a_confirmed_facility_is_imported(db, tmp_path):
    invoke, engine = db
    path = lists.write_rs_csv(tmp_path / "rs.csv")
    out = _import(invoke, path)
    assert "16-ik-2" in out and "02-ik-2" in out  # both ИК-2 offered for Сидоренко
    _import(invoke, path, "--confirm", "5=16-ik-2", "--apply")
    assert _directory(engine)["Сидоренко Олег Викторович"].facility_id == "16-ik-2"


def test_reimport_shows_exactly_the_transfer_the_release_and_the_new_person(any_db, tmp_path):
    invoke, engine = any_db
    _import(invoke, lists.write_rs_csv(tmp_path / "rs.csv"), "--apply")
    before = _directory(engine)
    rows = list(lists.RS_ROWS)
    rows[0] = rows[0].replace("ФКУ СИЗО-1 УФСИН России по г. Москве, 107076, г. Москва, ул. "
                              "Матросская Тишина, д. 18", "СИЗО-2 «Бутырка», Москва")
    del rows[4]  # Орлова: released, or the list forgot her
    rows.append("Новиков Павел Андреевич, 1999 г.р.;ФКУ ИК-9 ГУФСИН России по Пермскому краю;"
                "м;;в заключении")
    second = lists.write_rs_csv(tmp_path / "rs2.csv", rows)

    out = _import(invoke, second)
    assert "1 new, 1 changed (1 moved), 2 unchanged, 2 to confirm, 1 absent" in out
    assert "Новиков Павел Андреевич" in out and "Орлова Вера Павловна" in out
    assert _directory(engine).keys() == before.keys()  # a preview writes nothing

    # Orlova stays until an organizer confirms she is gone.
    _import(invoke, second, "--apply")
    d = _directory(engine)
    assert d["Иванов Иван Иванович"].facility_id == "77-sizo-2"
    assert d["Иванов Иван Иванович"].moved_at == date.today()
    assert d["Новиков Павел Андреевич"].facility_id == "59-ik-9"
    assert d["Орлова Вера Павловна"].status == "in_custody"
    assert {n: p.facility_id for n, p in d.items() if n in before} == {
        **{n: p.facility_id for n, p in before.items()}, "Иванов Иван Иванович": "77-sizo-2"}

    out = _import(invoke, second, "--retire", d["Орлова Вера Павловна"].code, "--apply")
    assert "retired 1" in out
    orlova = _directory(engine)["Орлова Вера Павловна"]
    assert (orlova.status, orlova.can_receive) == ("retired", False)


def test_in_transit_then_placed(db, tmp_path):
    """"Этап" keeps a known prisoner where they were, marked moved; the next list placing
    them at a facility ends the transit."""
    invoke, engine = db
    _import(invoke, lists.write_rs_csv(tmp_path / "rs.csv"), "--apply")
    rows = list(lists.RS_ROWS)
    rows[1] = "Петрова Мария, 1992 г.р.;Этап;жен;книги;"
    _import(invoke, lists.write_rs_csv(tmp_path / "rs2.csv", rows), "--apply")
    petrova = _directory(engine)["Петрова Мария"]
    assert (petrova.status, petrova.facility_id) == ("moved", "77-sizo-2")
    rows[1] = "Петрова Мария, 1992 г.р.;ФКУ ИК-9 ГУФСИН России по Пермскому краю;жен;книги;"
    out = _import(invoke, lists.write_rs_csv(tmp_path / "rs3.csv", rows), "--apply")
    assert "moved 1" in out
    petrova = _directory(engine)["Петрова Мария"]
    assert (petrova.status, petrova.facility_id, petrova.moved_at) == (
        "in_custody", "59-ik-9", date.today())


@pytest.mark.parametrize("bad_row, column, needle", [
    ("Орлова Вера Павловна, 31.02.1970 г.р.;СИЗО-1 «Кресты»;ж;;в заключении", "ФИО",
     "not a real date"),
    ("Орлова Вера Павловна;СИЗО-1 «Кресты»;ж;;на Луне", "Статус", "status"),
    ("Орлова Вера Павловна;СИЗО-1 «Кресты»;робот;;в заключении", "Пол", "gender"),
])
def test_a_malformed_file_changes_nothing_and_names_the_row(any_db, tmp_path, bad_row, column,
                                                            needle):
    invoke, engine = any_db
    _import(invoke, lists.write_rs_csv(tmp_path / "rs.csv"), "--apply")
    before = {n: (p.facility_id, p.status, p.updated_at) for n, p in _directory(engine).items()}
    rows = list(lists.RS_ROWS)
    rows[0] = rows[0].replace("г. Москве, 107076", "г. Москве, 127055").replace(
        "СИЗО-1", "СИЗО-2")  # a transfer that must not happen either
    rows[4] = bad_row
    rows.append("Новиков Павел;ИК-9 Пермь;м;;в заключении")
    out = _import(invoke, lists.write_rs_csv(tmp_path / "bad.csv", rows), "--apply", code=1)
    assert f"row 6, column '{column}'" in out and needle in out
    assert "nothing imported" in out
    assert {n: (p.facility_id, p.status, p.updated_at)
            for n, p in _directory(engine).items()} == before


def test_a_file_that_is_no_list_is_refused(db, tmp_path):
    invoke, engine = db
    broken = tmp_path / "list.xlsx"
    broken.write_bytes(b"PK\x03\x04 not really a workbook")
    assert "not a readable XLSX workbook" in _import(invoke, broken, code=1)
    nameless = tmp_path / "list.csv"
    nameless.write_text("Учреждение;Статус\nИК-2;в заключении\n", encoding="utf-8")
    assert "no column for the name" in _import(invoke, nameless, code=1)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Prisoner)) == 0


def test_a_transfer_holds_letters_not_yet_sent_and_tells_their_writers(any_db, tmp_path):
    from gateway.crypto import keyring
    from gateway.models import Letter, LetterEvent, OutboundMail
    from gateway.states import LetterState as S

    invoke, engine = any_db
    _import(invoke, lists.write_rs_csv(tmp_path / "rs.csv"), "--apply")
    keys = keyring(get_settings())
    with Session(engine) as session:
        ivanov = session.scalar(select(Prisoner).where(Prisoner.last_name == "Иванов"))
        for n, state in enumerate((S.READY, S.SUBMITTED)):
            session.add(Letter(public_id=f"L{n}", state=state, prisoner_id=ivanov.id,
                               body="Здравствуйте!", sender_sealed=keys.seal("w@example.org"),
                               sender_hash=keys.address_hash("w@example.org")))
        session.commit()
    rows = list(lists.RS_ROWS)
    rows[0] = rows[0].replace("ФКУ СИЗО-1 УФСИН России по г. Москве, 107076", "СИЗО-2 "
                              "УФСИН России по г. Москве, 127055")
    out = _import(invoke, lists.write_rs_csv(tmp_path / "rs2.csv", rows), "--apply")
    assert "moved 1" in out and "1 letter(s) held" in out
    with Session(engine) as session:
        ready, submitted = session.scalars(select(Letter).order_by(Letter.public_id)).all()
        assert (ready.state, submitted.state) == (S.HELD, S.SUBMITTED)  # paid: left alone
        event = session.scalar(select(LetterEvent).where(LetterEvent.letter_id == ready.id))
        assert (event.from_state, event.to_state) == (S.READY, S.HELD)
        assert "СИЗО-2" in event.note
        notice = session.scalar(select(OutboundMail).where(OutboundMail.letter_id == ready.id))
        assert notice.kind == "held"
        mail = message_from_bytes(keys.unseal_bytes(notice.message), policy=policy.default)
        text = mail.get_body(("plain",)).get_content()
        assert "перевели в другое учреждение" in text and "recently moved" in text


def test_one_person_written_twice_is_named_not_added_twice(db, tmp_path):
    invoke, engine = db
    rows = [*lists.RS_ROWS, lists.RS_ROWS[0].replace("шахматы, история", "шахматы")]
    out = _import(invoke, lists.write_rs_csv(tmp_path / "twice.csv", rows), "--apply", code=1)
    assert "row 8, column 'ФИО': Иванов Иван Иванович is also row 2" in out
    assert _directory(engine) == {}
