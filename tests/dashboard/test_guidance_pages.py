"""Organizers edit the writers' guide (with a preview) and set their own weekly digest."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.crypto import unseal
from gateway.guidance.content import stored_markdown
from gateway.models import Prisoner, User

from .conftest import SECRET, csrf_token

pytestmark = [pytest.mark.dashboard, pytest.mark.directory]


def post(client, path, **data):
    data["csrf_token"] = csrf_token(client, "/")
    return client.post(path, data=data)


def test_preview_renders_markdown_without_html_and_saves_nothing(as_user, sessions):
    with sessions() as s:
        s.add(Prisoner(code="K1", last_name="Иванов", first_name="Иван", facility_name="ИК-2",
                       facility_id="x"))
        s.commit()
    client = as_user("moderator")
    page = post(client, "/guidance", action="preview", ru="## Заголовок\n<script>x()</script>",
                en="**Bold** text").get_data(as_text=True)
    assert "<h2>Заголовок</h2>" in page and "<strong>Bold</strong>" in page
    assert "<script>x()" not in page and "&lt;script&gt;" in page
    assert "Иванову Ивану" in page  # the list a writer would get today
    with sessions() as s:
        assert "Заголовок" not in stored_markdown(s)["ru"]


def test_saving_stores_both_languages_and_reset_restores_the_default(as_user, sessions):
    client = as_user("moderator")
    assert post(client, "/guidance", action="save", ru="Пишите о книгах.",
                en="Write about books.").status_code == 302
    with sessions() as s:
        assert stored_markdown(s) == {"ru": "Пишите о книгах.", "en": "Write about books."}
    post(client, "/guidance", action="reset")
    with sessions() as s:
        assert "Как написать человеку" in stored_markdown(s)["ru"]


def test_a_viewer_cannot_edit_the_guide(as_user, sessions):
    client = as_user("viewer")
    assert client.get("/guidance").status_code == 403
    assert post(client, "/guidance", action="save", ru="x", en="y").status_code == 403


def test_each_organizer_sets_their_own_digest_and_sees_the_address_masked(as_user, sessions):
    client = as_user("viewer")
    assert post(client, "/me/digest", opt_in="1").status_code == 302  # no address: refused
    with sessions() as s:
        assert not s.scalar(select(User).where(User.username == "viewer")).digest_opt_in
    post(client, "/me/digest", email="vera@org.example", opt_in="1")
    page = client.get("/me/digest").get_data(as_text=True)
    assert "v***@o***.example" in page and "vera@org.example" not in page
    with sessions() as s:
        user = s.scalar(select(User).where(User.username == "viewer"))
        assert user.digest_opt_in and unseal(SECRET, user.email_sealed) == "vera@org.example"
        assert s.scalar(select(User).where(User.username == "admin")).email_sealed is None
    people = as_user("admin").get("/users").get_data(as_text=True)
    assert 'on, <span class="mono">v***@o***.example</span>' in people and "vera@org.example" not in people
    post(client, "/me/digest")  # the box unticked: off, the address kept
    with sessions() as s:
        user = s.scalar(select(User).where(User.username == "viewer"))
        assert not user.digest_opt_in and user.email_sealed
