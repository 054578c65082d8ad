"""Unit tests for the LXD error classes in lxd_common.errors."""

from __future__ import annotations

import pytest

from lxd_common import errors
from lxd_common.errors import (
    ClusterError,
    LxdApiError,
    LxdCommonError,
    LxdError,
    MemberExistsError,
    MemberHasInstancesError,
    MemberNotFoundError,
    PreseedError,
    ProjectNotFoundError,
)


@pytest.mark.parametrize(
    "cls",
    [
        errors.LxdNotFoundError,
        errors.LxdUnreachableError,
        errors.LxdNotTrustedError,
        LxdApiError,
        PreseedError,
        errors.TrustEntryNotFoundError,
        ProjectNotFoundError,
        ClusterError,
        MemberExistsError,
        MemberNotFoundError,
        MemberHasInstancesError,
    ],
)
def test_every_lxd_error_is_an_lxd_error(cls: type[Exception]) -> None:
    assert issubclass(cls, LxdError)
    assert issubclass(cls, LxdCommonError)


@pytest.mark.parametrize(
    ("cls", "is_value_error"),
    [
        (PreseedError, True),
        (ProjectNotFoundError, True),
        (MemberExistsError, True),
        (MemberNotFoundError, True),
        (errors.TrustEntryNotFoundError, False),
        (errors.LxdUnreachableError, False),
        (LxdApiError, False),
        (MemberHasInstancesError, False),
        (ClusterError, False),
    ],
)
def test_bad_input_errors_are_value_errors(cls: type[Exception], is_value_error: bool) -> None:
    assert issubclass(cls, ValueError) is is_value_error


def test_membership_errors_are_cluster_errors() -> None:
    for cls in (MemberExistsError, MemberNotFoundError, MemberHasInstancesError):
        assert issubclass(cls, ClusterError)


def test_api_error_keeps_status_and_message() -> None:
    error = LxdApiError("LXD refused it: Project not found", 404)
    assert error.status == 404
    assert str(error) == "LXD refused it: Project not found"


def test_api_error_status_defaults_to_zero() -> None:
    assert LxdApiError("no code").status == 0


def test_member_has_instances_lists_up_to_five() -> None:
    error = MemberHasInstancesError("m2", ["c1", "proj/c2"])
    assert error.member == "m2"
    assert error.instances == ["c1", "proj/c2"]
    assert str(error) == (
        "member 'm2' still holds 2 instance(s) (c1, proj/c2); "
        "move or delete them before removing the member"
    )


def test_member_has_instances_exactly_five_is_not_truncated() -> None:
    names = [f"c{i}" for i in range(5)]
    message = str(MemberHasInstancesError("m2", names))
    assert "(c0, c1, c2, c3, c4);" in message
    assert "..." not in message


def test_member_has_instances_truncates_past_five_but_counts_all() -> None:
    names = [f"c{i}" for i in range(7)]
    error = MemberHasInstancesError("m2", names)
    assert "still holds 7 instance(s) (c0, c1, c2, c3, c4, ...);" in str(error)
    assert "c5" not in str(error)
    assert error.instances == names
