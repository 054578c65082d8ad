"""The errors `lxd_common` raises, as one hierarchy a charm can catch.

Every error says what was wrong in words an operator can act on, because
charms put these messages straight into a status or an action failure.
Errors caused by bad input also derive from `ValueError`, so code that
only wants to tell "the input was wrong" from "the system failed" can.
Failures a later retry can clear without anyone acting have classes of
their own (`SnapdUnavailableError`), so a charm can wait on them instead of
blocking.

Every library-level failure is mapped into this hierarchy once, where the
library meets the outside (charmlibs-snap in `lxd_common.snap`, pylxd in
`lxd_common.lxd`, charmlibs-sysctl in `lxd_common.sysctl`), so no caller
catches a third-party exception. The one error that stands outside it is
`InterfaceError`: the interfaces' code is the published package
`lxd_charms_interfaces` (``ops`` its only dependency), which cannot derive
from `LxdCommonError`, so `InterfaceError` here is that package's class, a
plain `ValueError`. The charms catch it by name where they read relation data.

The charms keep their own, smaller families, because they are decisions of
the charm rather than failures of the library: the LXD charm's
`lxd_charm.outcomes` (`BlockedError`, `WaitingError`: how a reconcile step
stops a hook with a status), `lxd_charm.actions.ActionError` (an action's
failure message), and two `ValueError`s for data the charm itself refuses,
`lxd_charm.cluster.ProtocolError` (a peer databag this protocol version
cannot read) and `lxd_charm.initialise.InitError` (options that make no
working initial configuration). Errors from here reach them through those:
a charm catches `LxdCommonError` subclasses and raises its own.
"""

from __future__ import annotations

from lxd_charms_interfaces import InterfaceError as _InterfaceError


class LxdCommonError(Exception):
    """Base class of every error raised by `lxd_common`."""


# --- certs and endpoints ---------------------------------------------------


class CertificateError(LxdCommonError, ValueError):
    """A PEM is not a usable X.509 certificate (or private key, where one is asked for)."""


class EndpointError(LxdCommonError, ValueError):
    """An LXD endpoint address cannot be parsed or has an invalid host or port."""


# --- snap --------------------------------------------------------------------


class SnapError(LxdCommonError):
    """snapd refused or failed an operation on the LXD snap."""


class SnapdUnavailableError(SnapError):
    """snapd did not answer in time, or was restarting: nothing was refused, so retry later."""


class SnapChannelError(SnapError, ValueError):
    """A snap channel is malformed (not `[track/]risk[/branch]`)."""


class SnapDowngradeError(SnapError):
    """A refresh would move LXD to an older track, which LXD does not support."""


class SnapConfigError(SnapError, ValueError):
    """A snap configuration key or value is not one LXD's snap accepts."""


class SideloadError(SnapError, ValueError):
    """A sideloaded LXD binary or snap (or a tarball of them) cannot be used."""


# --- interfaces --------------------------------------------------------------


#: Relation data that does not follow its interface (lxd, lxd-https), naming
#: the field: `lxd_charms_interfaces.InterfaceError` (a `ValueError`, not an
#: `LxdCommonError`; see the module docstring).
InterfaceError = _InterfaceError


# --- sysctl ------------------------------------------------------------------


class SysctlError(LxdCommonError):
    """Kernel tuning or hardening could not be applied or reverted."""


# --- lxd ---------------------------------------------------------------------


class LxdError(LxdCommonError):
    """An operation on an LXD daemon failed."""


class LxdNotFoundError(LxdError):
    """No local LXD socket exists where LXD installs one."""


class LxdUnreachableError(LxdError):
    """The LXD daemon did not answer (socket or HTTPS endpoint), or not in time."""


class LxdServerCertificateError(LxdUnreachableError):
    """The server's TLS certificate is not the one pinned (or not signed by a trusted CA).

    Retrying does not help: the endpoint or the expected certificate is wrong.
    """


class LxdNotTrustedError(LxdError):
    """The LXD daemon answered but does not trust our client certificate."""


class LxdApiError(LxdError):
    """LXD refused a request; the message is LXD's own reason.

    ``status`` is LXD's error code (HTTP-like: 404 not found, 409 conflict),
    or 0 when LXD gave none, so callers can react to a conflict or absence
    without parsing the message.
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class PreseedError(LxdError, ValueError):
    """A preseed is not valid YAML, or not a mapping LXD's init accepts."""


class TrustEntryNotFoundError(LxdError):
    """No certificate in the trust store has the given name or fingerprint."""


class ProjectNotFoundError(LxdError, ValueError):
    """A trust restriction names a project that does not exist."""


class ClusterError(LxdError):
    """A cluster membership operation cannot be done."""


class MemberExistsError(ClusterError, ValueError):
    """A join token was asked for a member name that is already in the cluster."""


class MemberNotFoundError(ClusterError, ValueError):
    """The named cluster member does not exist."""


class MemberHasInstancesError(ClusterError):
    """A cluster member still holds instances, so it is not removed."""

    def __init__(self, member: str, instances: list[str]) -> None:
        self.member = member
        self.instances = instances
        shown = ", ".join(instances[:5]) + (", ..." if len(instances) > 5 else "")
        super().__init__(
            f"member {member!r} still holds {len(instances)} instance(s) ({shown}); "
            "move or delete them before removing the member"
        )


class StoragePoolInUseError(LxdError):
    """A storage pool still holds volumes, so it is not deleted."""

    def __init__(self, pool: str, volumes: list[str]) -> None:
        self.pool = pool
        self.volumes = volumes
        shown = ", ".join(volumes[:5]) + (", ..." if len(volumes) > 5 else "")
        super().__init__(
            f"storage pool {pool!r} still holds {len(volumes)} volume(s) ({shown}); "
            "move or delete them first"
        )
