"""Test clocks as a process reads them (`desk_platform.testclocks`): the latest state of each
clock, never behind an instant learnt on the way; "now" for a request; the clock a new request
lives on; refused in production; a record that is no clock change is skipped."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from pydantic import ValidationError

from desk_contracts.envelope import kafka_record
from desk_contracts.testclocks import TestClockChanged
from desk_platform.settings import Settings
from desk_platform.testclocks import (
    NotAClock,
    RequestTime,
    TestClockFeed,
    TestClocks,
    clock_for_new_request,
)

Header = tuple[str, bytes]
REAL = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
FROZEN = datetime(2027, 2, 1, 9, 0, tzinfo=UTC)


def change(clock_id: str = "tc-1", now: datetime = FROZEN, **fields: object) -> TestClockChanged:
    return TestClockChanged.model_validate(
        {"clock_id": clock_id, "desk": "erp-vendor", "now": now, "occurred_at": REAL, **fields}
    )


def test_now_is_the_clock_s_or_the_real_time_for_a_request_on_none() -> None:
    clocks = TestClocks()
    clocks.apply(change())
    times = RequestTime(lambda: REAL, clocks)
    assert times.now("tc-1") == FROZEN
    assert times.now(None) == REAL
    assert RequestTime(lambda: REAL).now("tc-1") == REAL  # test clocks not enabled here


def test_an_instant_learnt_on_the_way_is_kept_until_the_topic_says_later() -> None:
    clocks = TestClocks()
    clocks.apply(change())
    fired_at = FROZEN + timedelta(days=10)
    clocks.reached("tc-1", fired_at)
    clocks.reached("tc-1", FROZEN + timedelta(days=1))  # an older one changes nothing
    assert clocks.now("tc-1") == fired_at
    clocks.apply(change(now=FROZEN + timedelta(days=20)))
    assert clocks.now("tc-1") == FROZEN + timedelta(days=20)
    assert clocks.now("unknown") is None


async def test_a_new_request_lives_on_the_clock_it_asks_for_or_its_desk_s() -> None:
    clocks = TestClocks()
    clocks.apply(change())
    clocks.apply(change("tc-desk", desk="cloud-partner", attached_to="desk"))
    assert await clock_for_new_request(clocks, "erp-vendor", "tc-1") == ("tc-1", FROZEN)
    assert await clock_for_new_request(clocks, "cloud-partner", None) == ("tc-desk", FROZEN)
    assert await clock_for_new_request(clocks, "erp-vendor", None) is None
    assert await clock_for_new_request(None, "erp-vendor", None) is None
    with pytest.raises(NotAClock, match="the desk 'erp-vendor'"):
        await clock_for_new_request(clocks, "cloud-partner", "tc-1")
    with pytest.raises(NotAClock, match="not enabled"):
        await clock_for_new_request(None, "erp-vendor", "tc-1")


async def test_a_clock_just_created_is_waited_for_a_moment() -> None:
    clocks = TestClocks()

    async def later() -> None:
        await asyncio.sleep(0.05)
        clocks.apply(change("tc-late"))

    arriving = asyncio.create_task(later())
    assert await clocks.wait_for("tc-late", 2.0)
    await arriving
    assert not await clocks.wait_for("tc-never", 0.05)
    with pytest.raises(NotAClock, match="no test clock 'tc-never'"):
        await clock_for_new_request(TestClocks(), "erp-vendor", "tc-never")


def record(event_type: str, data: dict[str, Any]) -> tuple[bytes, bytes, list[Header]]:
    return kafka_record(
        id="e1", type=event_type, source="/desk/sla", subject="test-clock:tc-1", time=REAL,
        data=data, schema_version=1, extensions={}, request_state=None,
    )  # fmt: skip


def test_the_feed_keeps_each_clock_s_latest_state_and_skips_what_is_none() -> None:
    feed = TestClockFeed("unused:9092", "test-clocks", "tests")
    good = record(
        "TestClockChanged", change(now=FROZEN + timedelta(days=3)).model_dump(mode="json")
    )
    wrong = record("TicketCreated", {"ticket_id": "x"})
    records = [
        SimpleNamespace(key=k, value=v, headers=h, offset=n)
        for n, (k, v, h) in enumerate([wrong, (b"k", b"not json", []), good])
    ]
    feed.fold({TopicPartition("test-clocks", 0): records})
    assert feed.clocks.now("tc-1") == FROZEN + timedelta(days=3)
    assert feed.skipped == 2
    assert feed.summary() == "1 test clocks (2 records skipped)"


def test_test_clocks_are_refused_in_production() -> None:
    base = {
        "database_url": "postgresql://u",
        "kafka_bootstrap_servers": "k:9092",
        "test_clocks": True,
    }
    assert Settings.model_validate({**base, "desk_env": "development"}).test_clocks
    with pytest.raises(ValidationError, match="TEST_CLOCKS=true is refused with DESK_ENV"):
        Settings.model_validate({**base, "desk_env": "production"})
