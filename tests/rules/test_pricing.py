"""Pages and price match the contract (docs provider-api.md) on its boundaries."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.pricing import count_pages, quote
from gateway.providers.profiles import ProfileError, load_profiles

pytestmark = pytest.mark.rules


@pytest.fixture(scope="module")
def http():
    return load_profiles()["http"]


@pytest.mark.parametrize(
    ("length", "pages"),
    [(0, 1), (1, 1), (2499, 1), (2500, 1), (2501, 2), (5000, 2), (5001, 3)],
)
def test_pages_are_ceil_of_code_points(length, pages):
    assert count_pages("ж" * length) == pages


def test_newlines_and_spaces_count_as_characters():
    # 2,500 code points including 100 newlines: exactly one page; one more char: two.
    text = ("а" * 24 + "\n") * 100
    assert len(text) == 2500
    assert count_pages(text) == 1
    assert count_pages(text + " ") == 2
    assert count_pages("\r\n" * 1250) == 1  # CRLF is two code points, as sent
    assert count_pages("\r\n" * 1251) == 2


def test_astral_characters_are_one_code_point_each():
    assert count_pages("😀" * 2500) == 1
    assert count_pages("😀" * 2501) == 2


def test_contract_example_two_pages_with_reply_is_165(http):
    q = quote("б" * 2501, photos=0, reply_ordered=True, profile=http)
    assert (q.pages, q.photos, q.reply) == (2, 0, True)
    assert q.amount == Decimal("165.00") and str(q.amount) == "165.00"
    assert q.currency == "RUB"


@pytest.mark.parametrize(
    ("length", "photos", "reply", "amount"),
    [
        (0, 0, False, "55.00"),
        (2500, 0, False, "55.00"),
        (2501, 0, False, "110.00"),
        (2500, 1, True, "145.00"),
        (7501, 3, True, "380.00"),
    ],
)
def test_price_is_pages_plus_reply_plus_photos(http, length, photos, reply, amount):
    assert quote("x" * length, photos, reply, http).amount == Decimal(amount)


def test_profiles_shipped():
    profiles = load_profiles()
    assert {"fsin-pismo", "zonatelecom", "post", "http"} <= set(profiles)
    fsin, http = profiles["fsin-pismo"], profiles["http"]
    # The contract profile is FSIN-Pismo's tariff under another name.
    assert (http.page_chars, http.page_price, http.reply_price, http.photo_price) == (
        2500,
        Decimal("55.00"),
        Decimal("55.00"),
        Decimal("35.00"),
    )
    assert http.photo_types == fsin.photo_types == {"image/jpeg", "image/png", "image/gif"}
    assert http.photo_max_bytes == 5 * 1024 * 1024
    assert profiles["zonatelecom"].max_pages == 3
    assert profiles["zonatelecom"].max_photos == 10
    assert fsin.max_pages is None


def test_profiles_are_data(tmp_path: Path):
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[a]\npage_chars = 1000\npage_price = "10.50"\nreply_price = "0"\nphoto_price = "1"\n'
        "max_photos = 2\n"
        '[b]\ninherits = "a"\nmax_pages = 4\n',
        encoding="utf-8",
    )
    profiles = load_profiles(path)
    assert profiles["b"].page_chars == 1000 and profiles["b"].max_pages == 4
    q = quote("я" * 1001, 1, False, profiles["b"])
    assert (q.pages, q.amount) == (2, Decimal("22.00"))


def test_broken_profiles_are_refused(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[a]\ninherits = "nope"\n', encoding="utf-8")
    with pytest.raises(ProfileError):
        load_profiles(path)
    path2 = tmp_path / "bad2.toml"
    path2.write_text("[a]\npage_chars = 100\n", encoding="utf-8")
    with pytest.raises(ProfileError):
        load_profiles(path2)
