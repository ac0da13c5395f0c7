"""The canned replies' table on the real PostgreSQL server: kept per desk and language, a title
once per desk and language, changed and removed only through their desk."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from service_support import service_store

from portal.application import canned

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


async def test_replies_are_kept_per_desk_and_language(database_url: str) -> None:
    async with service_store(database_url, "portal") as pool, pool.acquire() as conn:
        desk = f"desk-{uuid.uuid4().hex[:8]}"
        thanks = await canned.save(conn, desk, "fr", "Merci", "Merci {requester}", "lea", NOW)
        assert thanks is not None
        assert await canned.save(conn, desk, "en", "Thanks", "Thank you", "lea", NOW)
        assert await canned.save(conn, desk, "fr", "Merci", "twice", "lea", NOW) is None
        assert [r.title for r in await canned.replies_of(conn, desk, "fr")] == ["Merci"]
        assert len(await canned.replies_of(conn, desk)) == 2
        other = await canned.save(
            conn, "another-desk", "fr", "Vol", "x", "max", NOW, reply_id=thanks.reply_id
        )
        assert other is None  # a reply is changed through its own desk only
        changed = await canned.save(
            conn, desk, "fr", "Merci", "Merci beaucoup", "max", NOW, reply_id=thanks.reply_id
        )
        assert changed is not None and changed.body == "Merci beaucoup"
        assert changed.changed_by == "max"
        assert not await canned.delete(conn, "another-desk", thanks.reply_id)
        assert await canned.delete(conn, desk, thanks.reply_id)
        assert await canned.reply(conn, desk, thanks.reply_id) is None
