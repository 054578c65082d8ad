"""The snapd seam: what this package asks of snapd, and the real snapd behind it.

`CharmlibsSnapBackend` is the one place where snapd's failures become ours. It
sorts them by what the caller can do about them: snapd not answering (a
timeout, a lost or refused connection, which is what a restarting snapd looks
like) is `SnapdUnavailableError`, to retry later; anything snapd refused is a
plain `SnapError` (or `SnapChannelError` for a channel the store lacks), which
retrying does not fix.

Cohorts: charmlibs-snap 2.0 has no cohort support, so an install or refresh
that joins or leaves a cohort goes through the `snap` command, which sends
snapd's `cohort-key` / `leave-cohort` fields of `POST /v2/snaps/{name}` and
waits for the change. ``cohort="+"`` is the `+` cohort the `snap` command
accepts as `--cohort=+`: every machine that installs or refreshes in it is
offered the same revision, whatever the store's progressive releases would
give each machine on its own.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from lxd_common._lazy import lazy_module

if TYPE_CHECKING:
    from charmlibs import snap as _snapd
else:
    _snapd = lazy_module("charmlibs.snap")  # loaded on the first call to snapd

from lxd_common.errors import SnapChannelError, SnapdUnavailableError, SnapError

INSTALLER_DIR = Path("/usr/sbin")
"""Where Ubuntu's `lxd-installer` package puts its `lxd` and `lxc` wrapper scripts."""

_CLI_UNREACHABLE = "cannot communicate with server"
"""How the `snap` command says it could not reach snapd (refused, reset or no socket
answer), as opposed to snapd refusing the request."""


@dataclass(frozen=True)
class InstalledSnap:
    """What snapd says about an installed snap.

    Attributes:
        name: the snap's name.
        channel: the channel it tracks (`latest/stable`); empty for a snap installed from a
            file, which tracks none.
        revision: snapd's revision, a string because local installs are `x1`, `x2`, ...
        version: the packaged software's version, e.g. `5.21.3-c5ae129`.
        held: snapd holds its automatic refreshes (`snap refresh --hold`); the charm's own
            refreshes still go through.
    """

    name: str
    channel: str
    revision: str
    version: str
    held: bool = False


class SnapBackend(Protocol):
    """Everything this package asks of snapd, so tests can stand in for it."""

    def installed(self, name: str) -> InstalledSnap | None:
        """The installed snap, or None when it is not installed."""
        ...

    def install(self, name: str, channel: str | None, *, cohort: str = "") -> None:
        """Install the snap from the store, tracking `channel` (None: the store's default).

        ``cohort`` installs it in that cohort (`+`: the cohort of every machine that asks
        for `+`), so it gets the cohort's revision; "" installs it on its own.
        """
        ...

    def installer(self, name: str) -> Path | None:
        """The distribution's installer wrapper for the snap, when one is present.

        Ubuntu's `lxd-installer` package puts a small script where the `lxd`
        command would be; running it installs the snap on the channel the
        release chose. None where there is no such wrapper.
        """
        ...

    def run_installer(self, path: Path) -> None:
        """Run the installer wrapper, which installs the snap."""
        ...

    def refresh(
        self,
        name: str,
        channel: str | None,
        *,
        amend: bool = False,
        cohort: str = "",
        leave_cohort: bool = False,
    ) -> None:
        """Move the installed snap to `channel` (None: the store's default channel).

        On the channel it already tracks, this picks up the newest revision the
        store (or the cohort) offers, and does nothing when there is none.
        ``amend`` lets snapd replace a snap installed from a file with the
        store's, which a plain refresh refuses to do. ``cohort`` refreshes in
        that cohort (joining it); ``leave_cohort`` leaves the one it is in.
        """
        ...

    def hold(self, name: str) -> None:
        """Hold snapd's automatic refreshes of the snap for good (asked-for ones still run)."""
        ...

    def unhold(self, name: str) -> None:
        """Let snapd refresh the snap automatically again."""
        ...

    def get_config(self, name: str) -> dict[str, Any]:
        """The snap's whole configuration, nested by dots as snapd returns it."""
        ...

    def set_config(self, name: str, values: dict[str, str]) -> None:
        """Set snap config keys (dotted names) in one change."""
        ...

    def unset_config(self, name: str, keys: list[str]) -> None:
        """Unset snap config keys, so the snap's defaults apply again."""
        ...

    def install_file(self, path: Path) -> None:
        """Install a local `.snap`, unsigned (`snap install --dangerous`)."""
        ...

    def restart(self, name: str) -> None:
        """Restart the snap's services."""
        ...


@contextlib.contextmanager
def _snapd_errors(action: str, name: str, channel: str | None = None) -> Iterator[None]:
    """Turn charmlibs-snap's errors into ours, so callers catch one hierarchy.

    charmlibs-snap raises `TimeoutError` when snapd did not answer in time and
    `ConnectionError` when it could not be reached (snapd restarting, typically,
    after it already retried reads briefly): nothing was refused, so those are
    `SnapdUnavailableError`. `SocketNotFoundError` is a `ConnectionError` too, but
    means snapd is not installed, which no retry fixes, so it stays a `SnapError`.
    """
    try:
        yield
    except _snapd.ChannelNotAvailableError as e:
        raise SnapChannelError(
            f"snap {name!r} has no release on channel {channel!r}; "
            f"pick a channel the store offers ({e})"
        ) from e
    except _snapd.SocketNotFoundError as e:
        raise SnapError(f"could not {action} snap {name!r}: {e}") from e
    except (_snapd.TimeoutError, _snapd.ConnectionError) as e:
        raise SnapdUnavailableError(
            f"could not {action} snap {name!r}: snapd is not answering ({e}); will retry"
        ) from e
    except (_snapd.Error, ValueError) as e:
        raise SnapError(f"could not {action} snap {name!r}: {e}") from e


def _channel_flag(channel: str | None) -> list[str]:
    return [f"--channel={channel}"] if channel else []


def _run_snap(arguments: list[str], message: str) -> None:
    """Run `snap <arguments>` and wait for it; a failure raises with snapd's words.

    The snap command waits for the change it starts, so when it returns the
    snap is installed or refreshed (or snapd said why not).
    """
    try:
        result = subprocess.run(
            ["snap", *arguments], capture_output=True, text=True, check=False, timeout=1200
        )
    except subprocess.TimeoutExpired as e:
        raise SnapdUnavailableError(f"{message}: {e}; will retry") from e
    except OSError as e:
        raise SnapError(f"{message}: {e}") from e
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
        raise _cli_error(f"{message}: {reason}", reason)


def _cli_error(message: str, output: str) -> SnapError:
    """The error for a failed `snap` command, by whether snapd answered at all."""
    if _CLI_UNREACHABLE in output:
        return SnapdUnavailableError(f"{message}; will retry")
    return SnapError(message)


class CharmlibsSnapBackend(SnapBackend):
    """The real snapd, through charmlibs-snap (and the `snap` CLI for local files)."""

    def installed(self, name: str) -> InstalledSnap | None:
        """The installed snap, or None when it is not installed."""
        with _snapd_errors("query", name):
            try:
                info = _snapd.list_one(name)
            except _snapd.NotInstalledError:
                return None
        return InstalledSnap(
            info.name, info.tracking, info.revision, info.version, held=info.hold is not None
        )

    def install(self, name: str, channel: str | None, *, cohort: str = "") -> None:
        """Install the snap from the store, tracking `channel` (None: the store's default)."""
        if cohort:
            # charmlibs-snap has no cohorts; the snap command does (`--cohort`).
            _run_snap(
                ["install", *_channel_flag(channel), f"--cohort={cohort}", name],
                f"could not install snap {name!r} in cohort {cohort!r}",
            )
            return
        with _snapd_errors("install", name, channel):
            _snapd.install(name, channel=channel)

    def installer(self, name: str) -> Path | None:
        """`/usr/sbin/<name>` when it is a script (lxd-installer's), not a real binary.

        A real LXD binary there (a distribution's own package) is no installer,
        and the snap's own command lives in /snap/bin.
        """
        path = INSTALLER_DIR / name
        try:
            with path.open("rb") as handle:
                return path if handle.read(2) == b"#!" else None
        except OSError:
            return None

    def run_installer(self, path: Path) -> None:
        """Run the wrapper once (`lxd version`): it installs the snap, then answers."""
        try:
            subprocess.run(
                [str(path), "version"], check=True, capture_output=True, text=True, timeout=600
            )
        except subprocess.CalledProcessError as e:
            detail = (e.stderr or e.stdout or "").strip() or f"exit status {e.returncode}"
            raise _cli_error(f"{path} (lxd-installer) failed: {detail}", detail) from e
        except subprocess.TimeoutExpired as e:
            raise SnapdUnavailableError(f"{path} (lxd-installer) failed: {e}; will retry") from e
        except OSError as e:
            raise SnapError(f"{path} (lxd-installer) failed: {e}") from e

    def refresh(
        self,
        name: str,
        channel: str | None,
        *,
        amend: bool = False,
        cohort: str = "",
        leave_cohort: bool = False,
    ) -> None:
        """Move the installed snap to `channel` (``amend``: from a file to the store).

        With ``cohort`` or ``leave_cohort`` it goes through the `snap` command,
        like ``amend``: charmlibs-snap has none of the three.
        """
        if amend or cohort or leave_cohort:
            flags = ["--amend"] if amend else []
            flags += [f"--cohort={cohort}"] if cohort else []
            flags += ["--leave-cohort"] if leave_cohort and not cohort else []
            what = "move snap {!r} back to the store" if amend else "refresh snap {!r}"
            _run_snap(
                ["refresh", *flags, *_channel_flag(channel), name],
                f"could not {what.format(name)}",
            )
            return
        with _snapd_errors("refresh", name, channel):
            _snapd.refresh(name, channel=channel)

    def hold(self, name: str) -> None:
        """Hold snapd's automatic refreshes of the snap, for good."""
        with _snapd_errors("hold refreshes of", name):
            _snapd.hold(name)

    def unhold(self, name: str) -> None:
        """Let snapd refresh the snap automatically again."""
        with _snapd_errors("release the refresh hold of", name):
            _snapd.unhold(name)

    def get_config(self, name: str) -> dict[str, Any]:
        """The snap's whole configuration, nested by dots as snapd returns it."""
        with _snapd_errors("read the configuration of", name):
            return _snapd.get(name)

    def set_config(self, name: str, values: dict[str, str]) -> None:
        """Set snap config keys (dotted names) in one change."""
        with _snapd_errors("configure", name):
            _snapd.set(name, dict(values))

    def unset_config(self, name: str, keys: list[str]) -> None:
        """Unset snap config keys, so the snap's defaults apply again."""
        with _snapd_errors("unset the configuration of", name):
            _snapd.unset(name, keys)

    def install_file(self, path: Path) -> None:
        """Install a local `.snap` with the `snap` CLI.

        snapd's REST API takes local snaps only as a multipart upload, which charmlibs-snap
        does not do, so this is the one operation that shells out.
        """
        try:
            subprocess.run(
                ["snap", "install", "--dangerous", str(path)],
                check=True,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except subprocess.CalledProcessError as e:
            detail = (e.stderr or e.stdout or "").strip() or f"exit status {e.returncode}"
            raise _cli_error(f"snap install --dangerous {path} failed: {detail}", detail) from e
        except subprocess.TimeoutExpired as e:
            raise SnapdUnavailableError(
                f"snap install --dangerous {path} failed: {e}; will retry"
            ) from e
        except OSError as e:
            raise SnapError(f"snap install --dangerous {path} failed: {e}") from e

    def restart(self, name: str) -> None:
        """Restart the snap's services."""
        with _snapd_errors("restart", name):
            _snapd.restart(name)
