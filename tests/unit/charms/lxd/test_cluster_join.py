"""How the charm reads LXD's join refusals (messages captured from LXD 5.0)."""

from __future__ import annotations

import time

import pytest
import tenacity

from lxd_charm.cluster_join import Refusal, join_with_retries, reason, refusal
from lxd_common.errors import LxdApiError

PREAMBLE = "LXD refused the preseed: Error: Failed to join cluster: "
TRUST = "Failed to setup cluster trust: Failed to add server cert to cluster: "
CAPTURED = {
    "replaced": f"{PREAMBLE}{TRUST}No matching cluster join operation found",
    "expired": f"{PREAMBLE}{TRUST}Failed during search for join token operation: "
    "Token has expired",
    "leader-down": f"{PREAMBLE}Unable to connect to any of the cluster members specified in "
    "join token",
    "bad-source": f"{PREAMBLE}Failed to initialize member: Failed to initialize storage pools "
    "and networks: Failed to create storage pool \"local\": Source path '/nope' doesn't exist",
    "already-clustered": f"{PREAMBLE}This server is already clustered",
    "database": f"{PREAMBLE}Failed to begin transaction: context deadline exceeded",
}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("replaced", Refusal.TOKEN),
        ("expired", Refusal.TOKEN),
        ("leader-down", Refusal.UNREACHABLE),
        ("database", Refusal.UNREACHABLE),
        ("bad-source", Refusal.MACHINE),
        ("already-clustered", Refusal.MACHINE),
    ],
)
def test_refusals_are_classified_by_what_would_make_the_join_succeed(
    case: str, expected: Refusal
) -> None:
    assert refusal(LxdApiError(CAPTURED[case])) is expected


def test_reason_keeps_lxds_words_without_the_shared_preamble() -> None:
    assert reason(LxdApiError(CAPTURED["already-clustered"])) == "This server is already clustered"
    assert reason(LxdApiError("something else")) == "something else"


class Joins:
    """An `LxdClient` stand-in whose join_cluster raises the given refusals, then succeeds."""

    def __init__(self, *refusals: str, takes: float = 0.0) -> None:
        self.refusals = list(refusals)
        self.calls = 0
        self.takes = takes
        self.timeouts: list[float] = []

    def join_cluster(self, *_: object, timeout: float) -> None:
        self.calls += 1
        self.timeouts.append(timeout)
        time.sleep(self.takes)
        if self.refusals:
            raise LxdApiError(self.refusals.pop(0))


def test_passing_refusals_are_retried() -> None:
    lxd = Joins(CAPTURED["leader-down"], CAPTURED["database"])
    join_with_retries(lxd, "n", "10.0.0.2:8443", "token", [])  # type: ignore[arg-type]
    assert lxd.calls == 3


@pytest.mark.parametrize("case", ["replaced", "bad-source"])
def test_other_refusals_are_not_retried(case: str) -> None:
    lxd = Joins(CAPTURED[case])
    with pytest.raises(LxdApiError):
        join_with_retries(lxd, "n", "10.0.0.2:8443", "token", [])  # type: ignore[arg-type]
    assert lxd.calls == 1


def test_a_refusal_that_does_not_pass_is_raised_once_the_time_is_up() -> None:
    lxd = Joins(*[CAPTURED["leader-down"]] * 100)
    with pytest.raises(LxdApiError, match="Unable to connect"):
        join_with_retries(lxd, "n", "10.0.0.2:8443", "token", [], retry_seconds=0)  # type: ignore[arg-type]
    assert lxd.calls == 1


def test_every_attempt_gets_only_the_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole join is bounded: an attempt started late cannot run lxd init for minutes."""
    monkeypatch.setattr("lxd_charm.cluster_join.MIN_ATTEMPT_SECONDS", 0.01)
    # No random back-off between attempts: the budget, not luck, decides how many run.
    monkeypatch.setattr(
        "lxd_charm.cluster_join.tenacity.wait_random_exponential",
        lambda **_: tenacity.wait_none(),
    )
    lxd = Joins(*[CAPTURED["leader-down"]] * 100, takes=0.05)
    with pytest.raises(LxdApiError, match="Unable to connect"):
        join_with_retries(lxd, "n", "10.0.0.2:8443", "token", [], retry_seconds=0.5)  # type: ignore[arg-type]
    assert lxd.calls >= 2
    assert lxd.timeouts[0] <= 0.5
    assert all(b < a for a, b in zip(lxd.timeouts, lxd.timeouts[1:], strict=False))
