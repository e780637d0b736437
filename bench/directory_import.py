"""A published list of 5,000 prisoners imported, then re-imported with transfers, releases
and new people: the time each stage takes, on a throwaway SQLite file (or --database-url).

    .venv/bin/python -m bench.directory_import              # 5,000 rows, cp1251 CSV
    .venv/bin/python -m bench.directory_import --shape xlsx --n 2000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from gateway.directory_import import prepare
from gateway.directory_import.apply import apply_plan
from gateway.migrate import upgrade
from gateway.models import Prisoner, ProviderFacility

REGIONS = [("Москва", "г. Москве"), ("Республика Татарстан", "Республике Татарстан"),
           ("Пермский край", "Пермскому краю"), ("Московская область", "Московской области"),
           ("Республика Башкортостан", "Республике Башкортостан"),
           ("Свердловская область", "Свердловской области"),
           ("Краснодарский край", "Краснодарскому краю"),
           ("Санкт-Петербург и Ленинградская область",
            "г. Санкт-Петербургу и Ленинградской области")]
KINDS = ("СИЗО", "ИК", "КП", "ЛИУ")
LAST = ["Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
        "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров"]
FIRST = ["Алексей", "Иван", "Дмитрий", "Сергей", "Андрей", "Михаил", "Олег", "Павел"]
MIDDLE = ["Иванович", "Петрович", "Сергеевич", "Андреевич", "", "Олегович"]


def catalogue() -> list[tuple[str, str, str, str]]:
    out = []
    for code, (region, dative) in enumerate(REGIONS, start=1):
        for kind in KINDS:
            for number in range(1, 11):
                out.append((f"{code:02d}-{kind}-{number}", f"{kind}-{number}", region, dative))
    return out


def rows(n: int, rnd: random.Random, facilities) -> list[list[str]]:
    out = []
    for i in range(n):
        fid, name, region, dative = rnd.choice(facilities)
        kind, number = name.split("-")
        written = rnd.choice([f"ФКУ {kind}-{number} УФСИН России по {dative}",
                              f"{kind} №{number}, {region}",
                              f"ФКУ {kind}-{number} УФСИН России по {dative}, "
                              f"{rnd.randint(100000, 699999)}, ул. Ленина, д. {i % 90 + 1}"])
        name_cell = f"{rnd.choice(LAST)} {rnd.choice(FIRST)} {rnd.choice(MIDDLE)}".strip()
        born = f"{rnd.randint(1, 28):02d}.{rnd.randint(1, 12):02d}.{1950 + i % 55}"
        out.append([name_cell, written, born, f"X{i}"])
    return out


def write_csv(path: Path, body: list[list[str]]) -> None:
    lines = ["Код;ФИО;Место нахождения;Дата рождения"]
    lines += [f"{r[3]};{r[0]};{r[1]};{r[2]}" for r in body]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))


def write_xlsx(path: Path, body: list[list[str]]) -> None:
    from openpyxl import Workbook
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Код", "ФИО", "Место нахождения", "Дата рождения"])
    for r in body:
        sheet.append([r[3], r[0], r[1], r[2]])
    book.save(path)


class _Settings:  # apply_plan needs settings only to tell writers of held letters: none here
    pass


def measure(n: int = 5000, shape: str = "csv", database_url: str | None = None) -> dict:
    """Import an `n`-row list and re-import next month's; seconds per stage and counts.
    `import_s` (plan and apply of the first import) is the benchmark's `import_5000_s`."""
    rnd = random.Random(15)
    facilities = catalogue()
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        engine = create_engine(url)
        with Session(engine) as session:
            for fid, name, region, _ in facilities:
                session.add(ProviderFacility(provider="http", facility_id=fid, name=name,
                                             region=region))
            session.commit()
        body = rows(n, rnd, facilities)
        path = Path(tmp) / f"list.{shape}"
        (write_csv if shape == "csv" else write_xlsx)(path, body)
        figures: dict = {"rows": n, "shape": shape}
        with Session(engine) as session:
            t = time.perf_counter()
            _, _, plan = prepare(session, path)
            figures["plan_s"] = time.perf_counter() - t
            assert plan.ok, plan.errors[:3]
            t = time.perf_counter()
            apply_plan(session, plan, _Settings())
            session.commit()
            figures["apply_s"] = time.perf_counter() - t
            figures["imported"] = session.scalar(select(func.count()).select_from(Prisoner))
            figures["to_confirm"] = len(plan.to_confirm)
        figures["import_s"] = figures["plan_s"] + figures["apply_s"]
        # The next month's list: 1 % moved, 1 % gone, 1 % new.
        k = max(1, n // 100)
        second = [list(r) for r in body[k:]]
        for r in second[:k]:
            fid, name, region, dative = rnd.choice(facilities)
            r[1] = f"ФКУ {name} УФСИН России по {dative}"
        second += [[f"{rnd.choice(LAST)} {rnd.choice(FIRST)}", f"ИК-{rnd.randint(1, 10)} "
                    f"{REGIONS[0][0]}", "1.1.1990", f"N{i}"] for i in range(k)]
        (write_csv if shape == "csv" else write_xlsx)(path, second)
        with Session(engine) as session:
            t = time.perf_counter()
            _, _, again = prepare(session, path)
            assert again.ok, again.errors[:3]
            figures["replan_s"] = time.perf_counter() - t
            apply_plan(session, again, _Settings())
            session.commit()
            figures["reapply_s"] = time.perf_counter() - t - figures["replan_s"]
            figures.update(new=len(again.new), moved=len(again.transfers),
                           absent=len(again.absent))
        engine.dispose()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--shape", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    f = measure(args.n, args.shape, args.database_url)
    print(f"rows={f['rows']} shape={f['shape']} imported={f['imported']} "
          f"to_confirm={f['to_confirm']} plan_s={f['plan_s']:.2f} "
          f"apply_s={f['apply_s']:.2f} reimport: new={f['new']} "
          f"moved={f['moved']} absent={f['absent']} "
          f"replan_s={f['replan_s']:.2f} reapply_s={f['reapply_s']:.2f}")


if __name__ == "__main__":
    main()
