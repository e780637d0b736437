"""A campaign evening of 1,000 greetings over a few prisoners gathered into postcards: the
time to gather them (each a checked greeting moved to its prisoner's postcard, a full one
closing as the next opens) and to close the rest, and the rubles paid as postcards against
one letter each. On a throwaway SQLite file (or --database-url).

    .venv/bin/python -m bench.postcards                 # 1,000 greetings, 5 prisoners
    .venv/bin/python -m bench.postcards --n 300 --prisoners 3

Prints `postcards_rub_saved=… postcards_1000_s=…` (the time is for --n greetings, named
after the default); bench/run.py prints the same figures on its final line.

The checks themselves are measured by the throughput part of bench/run.py; here each
greeting arrives as checks leave it (RECEIVED, its body, prisoner and own-letter price
set), so the figure is what postcards add to an evening."""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import date, timedelta
from types import SimpleNamespace

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from gateway import actions, postcards
from gateway.formatting import render_letter
from gateway.migrate import upgrade
from gateway.models import Evening, Letter, Postcard, Prisoner, utcnow
from gateway.pipeline.intake import new_public_id
from gateway.pricing import quote
from gateway.providers.services import Route
from gateway.states import LetterState as S

WORDS = ("держитесь", "мы", "с", "вами", "обнимаем", "ждём", "домой", "помним", "весной",
         "будет", "легче", "сил", "терпения", "привет", "из", "Казани", "Тбилиси", "Перми")
NAMES = ("Анна", "Олег", "Мария", "Пётр", "Ирина", "Глеб", "Дарья", "Нина", "Марк", "Вера")
BATCH = 25  # a check batch: one commit for this many letters, as the worker does


def greeting(rnd: random.Random) -> str:
    words = [rnd.choice(WORDS) for _ in range(rnd.randint(6, 60))]
    return " ".join(words).capitalize() + "!"


def run(n: int = 1000, prisoners: int = 5, database_url: str | None = None,
        seed: int = 14) -> dict:
    """Gather n greetings and close every postcard; the figures as a dict."""
    rnd = random.Random(seed)
    settings = SimpleNamespace(postcard_max_pages=2, postcard_window_minutes=120.0,
                               org_name="Письма поддержки", reply_ordered=True)
    way = Route(service="http", adapter="http", human_carried=False)
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        engine = create_engine(url)
        with Session(engine) as session:
            people = [Prisoner(code=f"B{i:03d}", last_name="Фамилия", first_name="Имя",
                               middle_name="Отчество", facility_name="ИК-1",
                               facility_id="f-1", provider="http") for i in range(prisoners)]
            evening = Evening(code="ve-bench", city="Москва", held_on=date.today())
            session.add_all([*people, evening])
            session.flush()
            letters = []
            for i in range(n):
                p = people[i % prisoners]
                body = greeting(rnd)
                name = rnd.choice(NAMES)
                rendered = render_letter("http", prisoner=p, writer_name=name, body=body)
                q = quote(rendered, 0, True, way.profile)
                letters.append(Letter(public_id=new_public_id(), state=S.RECEIVED,
                                      prisoner_id=p.id, writer_name=name, body=body,
                                      rendered=rendered, pages=q.pages, price=q.amount,
                                      currency=q.currency, evening_id=evening.id))
            session.add_all(letters)
            session.commit()
            ids = [le.id for le in letters]
            evening_id = evening.id
        started = time.perf_counter()
        closed_full = 0
        with Session(engine) as session:
            for at in range(0, n, BATCH):
                for letter in session.scalars(select(Letter).where(
                        Letter.id.in_(ids[at:at + BATCH])).order_by(Letter.id)):
                    closed_full += len(actions.gather(session, settings, letter, way))
                session.commit()
            gathered_s = time.perf_counter() - started
            made = postcards.close_due(session, settings, now=utcnow() + timedelta(days=1))
            session.commit()
        took = time.perf_counter() - started
        with Session(engine) as session:
            saved = postcards.savings(session, evening_id=evening_id)
            left = session.scalar(select(func.count()).select_from(Letter).where(
                Letter.state == S.GATHERED, Letter.postcard_id.in_(
                    select(Postcard.id).where(Postcard.letter_id.is_(None)))))
            max_pages = session.scalar(select(func.max(Postcard.pages)))
        engine.dispose()
    assert left == 0 and saved.greetings == n, (left, saved)
    return {"greetings": n, "prisoners": prisoners, "postcards": saved.postcards,
            "closed_full": closed_full, "closed_at_end": len(made), "pages": saved.pages,
            "max_pages": max_pages, "own_letters_rub": saved.own_letters_rub,
            "postcards_rub": saved.postcards_rub, "saved_rub": saved.saved_rub,
            "gather_s": gathered_s, "seconds": took}


def line(r: dict) -> str:
    return (f"postcards_rub_saved={r['saved_rub']:.2f} postcards_1000_s={r['seconds']:.2f} "
            f"greetings={r['greetings']} prisoners={r['prisoners']} "
            f"postcards={r['postcards']} pages={r['pages']} "
            f"rub_as_letters={r['own_letters_rub']:.2f} rub_as_postcards={r['postcards_rub']:.2f} "
            f"gather_s={r['gather_s']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--prisoners", type=int, default=5)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    print(line(run(args.n, args.prisoners, args.database_url)))


if __name__ == "__main__":
    main()
