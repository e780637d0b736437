"""A provider's refusal (422 and the like) in words a writer understands.

The service names the fields it did not accept ("text", "photos[0].content_type",
"recipient.birth_year", "facility_id"); the writer reads what that means for their letter
and what to do. Anything unnamed is ours to sort out, and the writer is told so."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.providers.base import PermanentError


@dataclass(frozen=True)
class Refusal:
    reason_ru: str
    reason_en: str
    writer_can_fix: bool  # else an organizer sorts it out and writes


_BY_FIELD: tuple[tuple[str, Refusal], ...] = (
    ("text", Refusal(
        "письмо длиннее, чем принимает учреждение адресата. Его можно сократить или "
        "разделить на несколько писем и прислать снова",
        "the letter is longer than the recipient's facility accepts. You can shorten it, or "
        "split it into several letters, and send it again", True)),
    ("photos", Refusal(
        "служба не приняла фотографии: учреждение не принимает их вовсе, принимает меньше "
        "или не в таком виде. Пришлите письмо без фотографий или с меньшим их числом",
        "the service did not accept the photos: the facility takes none, fewer, or not in "
        "this form. Please send the letter without photos, or with fewer", True)),
    ("facility", Refusal(
        "служба сейчас не доставляет письма в учреждение адресата. Организатор уточнит, как "
        "передать письмо, и напишет вам",
        "the service does not deliver to the recipient's facility at the moment. An "
        "organizer will find another way to deliver it and write to you", False)),
    ("recipient", Refusal(
        "служба не приняла данные адресата. Это наша забота: организатор их проверит и "
        "напишет вам",
        "the service did not accept the recipient's details. That is for us to fix: an "
        "organizer will check them and write to you", False)),
)
_OTHER = Refusal(
    "служба отклонила письмо по технической причине. Это наша забота: организатор "
    "разберётся и напишет вам",
    "the service declined the letter for a technical reason. That is for us to fix: an "
    "organizer will look into it and write to you", False)


def explain(error: PermanentError) -> list[Refusal]:
    """One plain reason per kind of field refused, in a stable order; never empty."""
    names = [str(k).split(".")[0].split("[")[0] for k in (error.fields or {})]
    found = [r for key, r in _BY_FIELD if any(n.startswith(key) for n in names)]
    return found or [_OTHER]
