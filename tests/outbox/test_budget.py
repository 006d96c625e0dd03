"""Shared rate budgets: slots handed out ahead, and reservations used at their slot only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from opsbot.outbox.budget import RESERVATION_GRACE, holds_reservation, take
from opsbot.outbox.ports import Wait


def test_a_short_bucket_hands_out_consecutive_slots(rt, clock) -> None:
    with rt.sessions.begin() as s:
        slots = [take(s, "k", rate=1, capacity=1, cost=1, now=clock.now) for _ in range(4)]
    assert slots == [0.0, 1.0, 2.0, 3.0]


def test_a_reservation_is_used_at_its_slot_only(clock) -> None:
    slot = clock.now
    assert holds_reservation(None, clock.now) is False
    with pytest.raises(Wait) as early:
        holds_reservation(slot + timedelta(seconds=2), clock.now)
    assert (early.value.seconds, early.value.reserved) == (2.0, True)
    assert holds_reservation(slot, clock.now) is True
    assert holds_reservation(slot, clock.now + RESERVATION_GRACE) is True
    # a worker was down past the slot: take a fresh one rather than burst
    assert holds_reservation(slot, clock.now + RESERVATION_GRACE + timedelta(seconds=1)) is False
