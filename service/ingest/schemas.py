"""What the CMS sends: the declaration of an image upload (the one declaration type), and its
``Idempotency-Key``. Every bound comes from the library (:mod:`provenance.stamp`, :mod:`provenance.articles`),
so the API refuses with a 422 naming the field what the library would refuse later."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header
from pydantic import BaseModel, ConfigDict, Field

from provenance.articles import MAX_EXTERNAL_ID
from provenance.stamp import MAX_REASON, MAX_TITLE, Source, StampRequest
from service.store.db import MAX_IDEMPOTENCY_KEY


class Declaration(BaseModel):
    """What the CMS declares with an upload (the ``declaration`` part, as JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source
    title: str | None = Field(default=None, max_length=MAX_TITLE)
    credit: str | None = Field(default=None, max_length=MAX_TITLE)
    #: Pairs the image with an article (the CMS's id, as articles carry it).
    external_id: str | None = Field(default=None, max_length=MAX_EXTERNAL_ID)
    #: Why this declaration contradicts an upstream (or earlier) AI claim; recorded and signed.
    override_upstream: str | None = Field(default=None, max_length=MAX_REASON)

    def canonical(self) -> dict[str, Any]:
        """The declaration as stored and as hashed into the asset id: set fields only."""
        fields = {
            "source": self.source.value,
            "title": self.title,
            "credit": self.credit,
            "external_id": self.external_id,
            "override_upstream": self.override_upstream,
        }
        return {k: v for k, v in fields.items() if v}

    def stamp_request(self) -> StampRequest:
        return StampRequest(
            source=self.source,
            title=self.title,
            override_upstream=self.override_upstream,
            upload_name=self.title or "upload",
            credit=self.credit,
            external_id=self.external_id,
        )


#: The ``Idempotency-Key`` header, stored with the asset: it must fit ``assets.idempotency_key`` and hold no
#: control character (PostgreSQL cannot store a NUL). A key that does not is refused before the body is read
#: with 422 ``/problems/invalid-request`` whose ``errors`` name the header, like every other value that does
#: not match the API (400 is kept for requests that cannot even be parsed, such as broken multipart framing).
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=MAX_IDEMPOTENCY_KEY,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description=f"Replays the first answer for the same key (at most {MAX_IDEMPOTENCY_KEY} characters)",
    ),
]
