"""TombstoneTracker: which paths Fusion may hide, and when realtime sends them again."""

from __future__ import annotations

from fustor_source_fs.tombstones import LAG_SLACK_SEC, RESEND_AFTER_SEC, TombstoneTracker

TTL = 100.0
T0 = 1_000_000.0


def hidden_tracker() -> TombstoneTracker:
    tracker = TombstoneTracker(TTL)
    tracker.deleted("/d/g", now=T0)
    assert tracker.seen("/d/g", mtime=T0 - 3600)  # back with an older mtime: hidden
    assert tracker.seen("/d/h", mtime=T0) is False  # never deleted: not tracked
    return tracker


def test_a_hidden_path_is_sent_again_at_each_step_after_the_ttl() -> None:
    tracker = hidden_tracker()
    purge = T0 + TTL + LAG_SLACK_SEC
    assert tracker.due(now=purge) == []  # the tombstone may still be there
    sent = []
    for step in RESEND_AFTER_SEC:
        assert tracker.due(now=purge + step - 0.5) == []
        sent += tracker.due(now=purge + step)
        assert tracker.due(now=purge + step + 0.1) == []  # once per step
        assert tracker.seen("/d/g", mtime=T0 - 3600)  # the re-sent row: still maybe hidden
    assert sent == ["/d/g"] * len(RESEND_AFTER_SEC)
    assert tracker.due(now=purge + 10 * RESEND_AFTER_SEC[-1]) == []  # then no more


def test_a_new_delete_or_a_newer_mtime_ends_the_re_sends() -> None:
    tracker = hidden_tracker()
    assert tracker.seen("/d/g", mtime=T0 + LAG_SLACK_SEC + 1) is False  # newer: accepted
    assert tracker.hidden == 0
    assert tracker.due(now=T0 + 10 * TTL) == []
    tracker = hidden_tracker()
    tracker.deleted("/d/g", now=T0 + 50)
    assert tracker.hidden == 0
    assert tracker.due(now=T0 + 10 * TTL) == []


def test_an_audit_that_restores_the_path_ends_the_re_sends() -> None:
    tracker = hidden_tracker()
    after_ttl = T0 + TTL + LAG_SLACK_SEC + 1
    tracker.audit_ended(tracker.audit_started(), {"/d"}, now=after_ttl)  # purges the tombstone
    tracker.audit_ended(tracker.audit_started(), {"/d"}, now=after_ttl + 1)  # lists /d: restored
    assert tracker.hidden == 0 and tracker.restored == 1
    assert tracker.due(now=after_ttl + RESEND_AFTER_SEC[-1]) == []


def test_a_path_an_audit_finds_hidden_is_sent_again_at_once_and_only_once() -> None:
    """An audit's row of it is dropped; realtime's row goes through a sender that clears the
    tombstones of its own deletes (the fusion sender), so it is sent at once."""
    tracker = TombstoneTracker(TTL)
    tracker.deleted("/d/g", now=T0)
    assert tracker.seen("/d/g", mtime=T0 - 3600, resend=True)
    assert tracker.due(now=T0 + 1) == ["/d/g"]
    assert tracker.due(now=T0 + 2) == []
    assert tracker.seen("/d/g", mtime=T0 - 3600, resend=True)  # the next audit: known
    assert tracker.due(now=T0 + 3) == []
    assert tracker.hidden == 1  # the steps after the TTL still follow
    tracker.deleted("/d/h", now=T0)
    assert tracker.seen("/d/h", mtime=T0 - 3600)  # realtime's own row: nothing extra
    assert tracker.due(now=T0 + 4) == []
