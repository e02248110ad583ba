"""Failure backoff (pure): delays double per failure up to a cap; a success forgets."""

from datetime import UTC, datetime, timedelta

from csctl.plan.backoff import BASE_DELAY, MAX_DELAY, Backoff

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_each_failure_in_a_row_doubles_the_delay():
    backoff = Backoff()
    delays = [backoff.fail("Hermes", NOW) - NOW for _ in range(3)]
    assert delays == [BASE_DELAY, 2 * BASE_DELAY, 4 * BASE_DELAY]
    assert backoff.failures == {"Hermes": 3}
    assert backoff.until == {"Hermes": NOW + 4 * BASE_DELAY}


def test_the_delay_stops_growing_at_the_cap():
    backoff = Backoff()
    delays = [backoff.fail("Hermes", NOW) - NOW for _ in range(40)]
    assert delays[0] == BASE_DELAY < MAX_DELAY
    assert max(delays) == MAX_DELAY and delays[-1] == MAX_DELAY
    assert delays == sorted(delays)


def test_the_delay_counts_from_the_latest_failure():
    backoff = Backoff()
    backoff.fail("Hermes", NOW)
    later = NOW + timedelta(hours=1)
    assert backoff.fail("Hermes", later) == later + 2 * BASE_DELAY


def test_a_success_forgets_the_failures_of_its_key_only():
    backoff = Backoff()
    for _ in range(3):
        backoff.fail("Hermes", NOW)
    backoff.fail("Hermes/ami-1", NOW)
    backoff.succeed("Hermes")
    assert backoff.failures == {"Hermes/ami-1": 1}
    assert backoff.active(NOW) == {"Hermes/ami-1": NOW + BASE_DELAY}
    assert backoff.fail("Hermes", NOW) == NOW + BASE_DELAY  # counting starts again
    backoff.succeed("never-failed")  # nothing to forget: no error


def test_active_keeps_only_keys_still_backed_off():
    backoff = Backoff()
    backoff.fail("A", NOW)
    backoff.fail("B", NOW + BASE_DELAY)
    assert set(backoff.active(NOW)) == {"A", "B"}
    # a skip ends at its time exactly
    assert backoff.active(NOW + BASE_DELAY) == {"B": NOW + 2 * BASE_DELAY}
    assert backoff.active(NOW + 2 * BASE_DELAY) == {}
    assert Backoff().active(NOW) == {}
