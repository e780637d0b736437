"""A volunteer works the desk and the post and reaches nothing else; a viewer cannot work
the desk."""

from __future__ import annotations

import pytest

from .conftest import csrf_token

pytestmark = [pytest.mark.dashboard, pytest.mark.desk]

ELSEWHERE = ["/", "/moderation", "/failures", "/replies", "/letters", "/letters/1",
             "/prisoners", "/facilities", "/users", "/audit", "/desk/volunteers"]


@pytest.mark.parametrize("path", ELSEWHERE)
def test_a_volunteer_is_sent_to_the_desk_from_every_other_page(as_user, path):
    response = as_user("volunteer").get(path)
    assert response.status_code in (302, 403)
    if response.status_code == 302:
        assert response.headers["Location"] == "/desk"


def test_a_volunteer_cannot_decide_a_held_letter(as_user, seed):
    letter_id = seed.letter("HELD")
    client = as_user("volunteer")
    response = client.post(f"/moderation/{letter_id}/approve",
                           data={"csrf_token": csrf_token(client, "/desk")})
    assert response.status_code == 403
    assert seed.get(letter_id).state == "HELD"


def test_a_volunteer_works_the_desk_and_a_viewer_does_not(as_user, seed):
    letter_id = seed.letter("DESK", provider="desk")
    volunteer = as_user("volunteer")
    page = volunteer.get("/desk").get_data(as_text=True)
    assert "Take a letter" in page and "Moderation" not in page
    volunteer.post("/desk/take", data={"csrf_token": csrf_token(volunteer, "/desk")})
    assert seed.get(letter_id).leased_by == "volunteer"
    viewer = as_user("viewer")
    assert viewer.get("/desk").status_code == 403
    assert viewer.post("/desk/take", data={"csrf_token": csrf_token(viewer, "/")}
                       ).status_code == 403
