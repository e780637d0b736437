"""Deterministic realistic letters: a seeded directory of prisoners and Russian letters of
support to them, as raw RFC 5322 bytes (CRLF).

A letter is 1-3 KB of warm, neutral Russian text (nothing the checks hold or return), half
plain, a fifth HTML-only, the rest multipart/alternative; UTF-8, KOI8-R or CP1251 with
8bit, quoted-printable or base64; a fifth carry one small JPEG photo (only to prisoners whose
facility takes photos). Addressed the ways writers address: the prisoner's name in the dative
in the subject, a "Кому:" first line, or the directory code in the subject."""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import cache
from pathlib import Path

from gateway.intake.names import inflect_full_name

# facility id, name, region, takes photos (the simulator's catalogue)
FACILITIES = (
    ("78-sizo-1", "СИЗО-1 «Кресты»", "Санкт-Петербург и Ленинградская область", True),
    ("78-sizo-6", "СИЗО-6 Горелово", "Санкт-Петербург и Ленинградская область", True),
    ("77-sizo-1", "СИЗО-1 «Матросская тишина»", "Москва", False),
    ("77-sizo-2", "СИЗО-2 «Бутырка»", "Москва", True),
    ("77-sizo-5", "СИЗО-5 «Водник»", "Москва", True),
    ("16-ik-2", "ИК-2 Казань", "Республика Татарстан", True),
    ("59-ik-9", "ИК-9 Пермь", "Пермский край", True),
)

# Surname stems that pymorphy inflects as surnames (male form; +а for women).
SURNAMES = """Смирнов Кузнецов Попов Васильев Соколов Михайлов Новиков Фёдоров Морозов Волков
Алексеев Лебедев Семёнов Егоров Павлов Козлов Степанов Николаев Орлов Андреев Макаров Никитин
Захаров Зайцев Соловьёв Борисов Яковлев Григорьев Романов Воробьёв Сергеев Фролов Александров
Дмитриев Королёв Гусев Киселёв Ильин Максимов Поляков Сорокин Виноградов Ковалёв Белов Медведев
Антонов Тарасов Жуков Баранов Филиппов Комаров Давыдов Беляев Герасимов Богданов Осипов Сидоров
Матвеев Титов Марков Миронов Крылов Куликов Карпов Власов Мельников Денисов Гаврилов Тихонов
Казаков Афанасьев Данилов Савельев Тимофеев Фомин Чернов Абрамов Мартынов Ефимов Федотов
Щербаков Назаров Калинин Исаев Чернышёв Быков Маслов Родионов Коновалов Лазарев Воронин Климов
Филатов Пономарёв Голубев Кудрявцев Прохоров Наумов Потапов Журавлёв Овчинников Трофимов Леонов
Соболев Ермаков Колесников Гончаров Емельянов Никифоров Грачёв Котов Гришин Ефремов Архипов
Громов Кириллов Малышев Панов Моисеев Румянцев Акимов Кондратьев Бирюков Горбунов Анисимов
Еремин Тихомиров Галкин Лукьянов Михеев Скворцов Юдин Белоусов Нестеров Симонов Прокофьев
Харитонов Князев Цветков Левин Митрофанов Воронов Аксёнов Софронов Мальцев Логинов Горшков
Савин Краснов Майоров Демидов Елисеев Рыбаков Сафонов Плотников Демин Хохлов Жданов Руднев
Шубин Самсонов Третьяков Суханов Мухин Лаврентьев Блинов Гордеев Ширяев Кулаков Носков
Фадеев Зуев Пестов Субботин Шилов Веселов Рогов Кузьмин Ершов Калашников Ситников Мишин
Лыков Беспалов Пахомов Дорофеев Кольцов Уваров Корнилов Зимин Рябов Зотов Лапин Дьячков
Савченков Тетерин Щукин Шестаков Баженов Воронцов Горелов Дроздов Евдокимов Игнатов Кабанов
Ларионов Муравьёв Озеров Пименов Рожков Селезнёв Туманов Ушаков Фокин Хромов Чеботарёв Шаров
Юшков Ястребов""".split()
MALE = """Александр Алексей Андрей Антон Артём Борис Вадим Валентин Василий Виктор Владимир
Глеб Григорий Даниил Денис Дмитрий Евгений Егор Иван Игорь Илья Кирилл Константин Лев Максим
Матвей Михаил Никита Николай Олег Павел Пётр Роман Семён Сергей Степан Тимофей Фёдор Юрий
Ярослав""".split()
FEMALE = """Александра Алина Анастасия Анна Валентина Валерия Вера Виктория Галина Дарья Евгения
Екатерина Елена Елизавета Ирина Ксения Лариса Любовь Людмила Маргарита Марина Мария Надежда
Наталья Нина Ольга Полина Светлана София Татьяна Юлия""".split()
# Patronymics in the male form; the female one swaps "ич" for "на".
PATRONYMICS = """Александрович Алексеевич Андреевич Борисович Васильевич Викторович Владимирович
Григорьевич Дмитриевич Евгеньевич Иванович Игоревич Константинович Михайлович Николаевич
Олегович Павлович Петрович Сергеевич Юрьевич""".split()

GREETINGS = ("Здравствуйте, {name}!", "Добрый день, {name}!", "Дорогой {name}!",
             "Привет, {name}!", "{name}, здравствуйте!")
GREETINGS_F = ("Здравствуйте, {name}!", "Добрый день, {name}!", "Дорогая {name}!",
               "Привет, {name}!", "{name}, здравствуйте!")
SENTENCES = """Пишу вам из Петербурга, у нас выпал первый снег, и город стал тихим и светлым.
Вечерами я читаю книги и вспоминаю, как мы гуляли по набережной летом.
Мы все помним о вас и очень ждём.
Берегите себя и пишите, что вы сейчас читаете.
На прошлой неделе я испекла пирог с яблоками по рецепту моей бабушки.
Наша кошка Муся снова спит на подоконнике и смотрит на голубей.
В парке возле дома распустилась сирень, и весь двор пахнет весной.
Я начала учить итальянский язык и уже умею заказать кофе.
Вчера мы с друзьями ходили на концерт органной музыки, было очень красиво.
Мой сын пошёл в первый класс и теперь каждый день рассказывает про новых друзей.
Осень в этом году тёплая, листья на клёнах стали ярко-жёлтыми.
Я посадила на даче помидоры и огурцы, надеюсь на хороший урожай.
Недавно перечитала "Мастера и Маргариту" и снова нашла там много нового.
Если вам хочется, я могу пересказать новые фильмы, которые посмотрела.
Мы с мамой вспоминали вас за ужином и передаём большой привет.
По утрам я гуляю с собакой вдоль реки, там много уток и лебедей.
На работе всё спокойно, мы готовим выставку детских рисунков.
Зимой мы катались на лыжах в лесу, снег искрился на солнце.
Я научилась вязать и связала себе тёплый шарф в полоску.
Пусть каждый день приносит вам хоть немного радости.
Напишите, пожалуйста, какие книги вам хотелось бы получить.
Недавно был день рождения у моей подруги, мы пекли торт и пели песни.
В нашем городе открыли новую библиотеку с большим читальным залом.
Я часто думаю о вас и желаю вам сил и терпения.
Ходили в ботанический сад, там зацвели орхидеи и кактусы.
Мой брат сделал скворечник, и весной в нём поселились синицы.
Летом мы ездили на озеро, вода была прохладной и прозрачной.
Сейчас я слушаю много джаза, особенно Эллу Фицджеральд.
Спасибо вам за ваши письма, они очень тёплые.
Мы с детьми собирали грибы и нашли целую корзину лисичек.
Вчера был сильный ветер, но к вечеру небо прояснилось и вышли звёзды.
У нас в подъезде живёт старый кот, которого все соседи подкармливают.
Я записалась в хор и теперь пою по четвергам.
Недавно посмотрела старый фильм "Иронию судьбы" и смеялась до слёз.
Весной мы красили забор на даче в голубой цвет.
Надеюсь, у вас есть возможность гулять и видеть небо.
Посылаю вам тёплые мысли и пожелания здоровья.
Мы научились печь хлеб дома, он получается ароматным и хрустящим.
В выходные я была в музее и долго стояла у картин Левитана.
Моя бабушка передаёт вам привет и говорит, что молится за вас.
Каждое утро я пью чай с мятой и смотрю, как просыпается улица.
Дети нарисовали для вас рисунок с солнцем и радугой.
Этой зимой на нашей улице построили огромную снежную горку.
Я прочитала интересную книгу о путешествиях по Байкалу.
Скоро Новый год, мы уже нарядили ёлку и повесили гирлянды.
Мы часто говорим о вас с друзьями и очень вас уважаем.
В саду поспели вишни, и мы сварили варенье.
Весной прилетели грачи, и стало понятно, что зима закончилась.
Я нашла старые фотографии и вспомнила наши поездки за город.
Держитесь, пожалуйста, вы не одни.""".strip().splitlines()
CLOSINGS = ("Обнимаю,", "С теплом,", "Всего доброго,", "Жду ответа,", "Ваша подруга по переписке,",
            "С уважением,")
WRITER_DOMAINS = ("mail.ru", "yandex.ru", "gmail.com", "example.org", "rambler.ru", "bk.ru")
_TRANSLIT = str.maketrans({
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "sch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya"})
BASE_DATE = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Prisoner:
    code: str
    last_name: str
    first_name: str
    middle_name: str
    birth_year: int
    facility_id: str
    facility_name: str
    region: str
    female: bool

    @property
    def takes_photos(self) -> bool:
        return next(f[3] for f in FACILITIES if f[0] == self.facility_id)

    def row(self) -> dict[str, str]:
        return {"code": self.code, "last_name": self.last_name, "first_name": self.first_name,
                "middle_name": self.middle_name, "birth_year": str(self.birth_year),
                "region": self.region, "facility_name": self.facility_name,
                "facility_id": self.facility_id, "provider": "http"}


def _patronymic(male_form: str, female: bool) -> str:
    return male_form[:-2] + "на" if female else male_form


def directory(count: int = 200, seed: int = 8) -> list[Prisoner]:
    """`count` prisoners with distinct surnames (so a name in any case resolves to one)."""
    rng = random.Random(seed)
    surnames = list(dict.fromkeys(SURNAMES))
    rng.shuffle(surnames)
    if count > len(surnames):
        raise ValueError(f"at most {len(surnames)} prisoners")
    out = []
    for i, surname in enumerate(surnames[:count]):
        female = rng.random() < 0.3
        facility = FACILITIES[i % len(FACILITIES)]
        out.append(Prisoner(
            code=f"B{i + 1:03d}",
            last_name=surname + "а" if female else surname,
            first_name=rng.choice(FEMALE if female else MALE),
            middle_name=_patronymic(rng.choice(PATRONYMICS), female),
            birth_year=rng.randint(1960, 2002),
            facility_id=facility[0], facility_name=facility[1], region=facility[2],
            female=female,
        ))
    return out


def directory_csv(prisoners: list[Prisoner], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(prisoners[0].row()))
        writer.writeheader()
        for p in prisoners:
            writer.writerow(p.row())
    return path


@cache
def photos() -> tuple[bytes, ...]:
    """Eight small JPEG 'photos' (gradients with shapes), 8-20 KB each; deterministic."""
    from PIL import Image, ImageDraw

    out = []
    rng = random.Random(42)
    for _ in range(8):
        img = Image.new("RGB", (480, 360))
        draw = ImageDraw.Draw(img)
        top, bottom = [rng.randint(0, 255) for _ in range(3)], [rng.randint(0, 255) for _ in range(3)]
        for y in range(360):
            t = y / 359
            draw.line([(0, y), (479, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)))
        for _ in range(12):
            x, y, r = rng.randint(0, 480), rng.randint(0, 360), rng.randint(10, 60)
            draw.ellipse([x - r, y - r, x + r, y + r],
                         fill=tuple(rng.randint(0, 255) for _ in range(3)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=70)
        out.append(buf.getvalue())
    return tuple(out)


@dataclass(frozen=True)
class Letter:
    index: int
    prisoner: Prisoner
    raw: bytes
    kind: str  # plain | html | alternative
    charset: str
    photo: bool


def _body(rng: random.Random, prisoner: Prisoner, writer_first: str) -> str:
    greet = rng.choice(GREETINGS_F if prisoner.female else GREETINGS).format(
        name=prisoner.first_name)
    target = rng.randint(550, 1500)  # characters: 1-3 KB in UTF-8
    paragraphs: list[str] = []
    length = 0
    pool = rng.sample(SENTENCES, len(SENTENCES))
    while length < target and pool:
        para = " ".join(pool.pop() for _ in range(min(len(pool), rng.randint(2, 4))))
        paragraphs.append(para)
        length += len(para)
    return "\n\n".join([greet, *paragraphs, f"{rng.choice(CLOSINGS)}\n{writer_first}"])


def _html(text: str) -> str:
    paras = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in text.split("\n\n"))
    return f'<html><head><meta charset="utf-8"></head><body><div dir="ltr">{paras}</div></body></html>'


def _address(rng: random.Random, p: Prisoner) -> tuple[str, str | None]:
    """(subject, first line or None)."""
    roll = rng.random()
    if roll < 0.75:
        return inflect_full_name(p.last_name, p.first_name, p.middle_name, "datv"), None
    if roll < 0.9:
        return rng.choice(("Письмо поддержки", "Письмо", "Привет из дома")), \
            f"Кому: {p.last_name} {p.first_name} {p.middle_name}"
    return f"{p.code}", None


WRITERS = 5000  # a campaign day: each writer sends two or three letters in a 10,000 run


def writer(n: int, seed: int = 8) -> tuple[str, str, str]:
    """The n-th writer of the pool: (first name, last name, address)."""
    rng = random.Random(f"writer:{seed}:{n}")
    female = rng.random() < 0.7
    first = rng.choice(FEMALE if female else MALE)
    last = rng.choice(SURNAMES) + ("а" if female else "")
    local = f"{first.lower().translate(_TRANSLIT)}.{last.lower().translate(_TRANSLIT)}{n}"
    return first, last, f"{local}@{rng.choice(WRITER_DOMAINS)}"


def make_letter(index: int, prisoners: list[Prisoner], seed: int = 8) -> Letter:
    """The index-th letter of the seeded stream; the same (index, seed) gives the same bytes."""
    rng = random.Random(f"{seed}:{index}")
    prisoner = rng.choice(prisoners)
    w_first, w_last, address = writer(index % WRITERS, seed)
    sender = f"{w_first} {w_last} <{address}>"
    subject, first_line = _address(rng, prisoner)
    text = _body(rng, prisoner, w_first)
    if first_line:
        text = first_line + "\n\n" + text
    charset = rng.choices(("utf-8", "koi8-r", "cp1251"), weights=(60, 25, 15))[0]
    cte = rng.choice(("8bit", "quoted-printable", "base64"))
    kind = rng.choices(("plain", "html", "alternative"), weights=(50, 20, 30))[0]
    photo = prisoner.takes_photos and rng.random() < 0.2 / 0.86  # ~20% of all letters

    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "letters@gateway.local"
    msg["Subject"] = subject
    msg["Date"] = format_datetime(BASE_DATE + timedelta(seconds=index * 7))
    msg["Message-ID"] = f"<bench-{seed}-{index}@{sender.rsplit('@', 1)[1].rstrip('>')}>"
    if kind == "html":
        msg.set_content(_html(text), subtype="html", charset=charset, cte=cte)
    else:
        msg.set_content(text, charset=charset, cte=cte)
        if kind == "alternative":
            msg.add_alternative(_html(text), subtype="html", charset=charset, cte=cte)
    if photo:
        msg.add_attachment(rng.choice(photos()), maintype="image", subtype="jpeg",
                           filename=f"IMG_{rng.randint(1000, 9999)}.jpg")
    for n, part in enumerate(p for p in msg.walk() if p.is_multipart()):
        part.set_boundary(f"=_bench_{seed}_{index}_{n}")  # the default one is random
    return Letter(index, prisoner, msg.as_bytes(policy=SMTP), kind, charset, photo)


def letters(start: int, count: int, prisoners: list[Prisoner], seed: int = 8) -> list[Letter]:
    return [make_letter(i, prisoners, seed) for i in range(start, start + count)]
