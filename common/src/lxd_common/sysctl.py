"""Production kernel tuning and hardening for an LXD host, on charmlibs-sysctl.

Two independent switches, one per charm option, both safe to re-run and both
undoable:

- `SysctlTuning` (`sysctl-tuning`): the limits LXD's "Production server setup"
  documentation recommends for hosts running many instances, persisted through
  charmlibs-sysctl's `/etc/sysctl.d/90-juju-<app>` file. The kernel's values from
  before the first tuning are kept in a state file, so turning the option off
  puts them back live instead of leaving them until the next reboot.
- `KernelHardening` (`kernel-hardening`): restricts `/proc/sched_debug` and
  `/sys/kernel/slab`, which otherwise let one container learn the names of
  the others, and keeps it so across reboots with a systemd-tmpfiles entry.

::

    SysctlTuning(app_name, state_dir).apply(config.sysctl_tuning)
    KernelHardening(state_dir).apply(config.kernel_hardening)

Both raise `lxd_common.errors.SysctlError`, naming the keys or paths involved.

Both take a `root` that every path they read or write directly is resolved
under (`/proc/sys`, `/proc`, `/sys`, `/etc/tmpfiles.d`), so tests run them on a
scratch directory. `SysctlTuning` reaches the kernel and `/etc/sysctl.d` through
a `SysctlBackend`; the default, `CharmlibsSysctl`, uses charmlibs-sysctl's public
API, which always writes `/etc/sysctl.d` and runs the real `sysctl`. Under any
other `root` it refuses rather than tune this machine's kernel, unless the
library has been pointed under that root (the test harness does that, and it is
the only place that touches the library's internals); or pass `backend=`.
"""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from charmlibs import sysctl as _charmlibs

from lxd_common.errors import SysctlError

logger = logging.getLogger(__name__)

# Values from LXD's "Server settings for a LXD production setup". The docs once gave
# 3000000000 for bpf_jit_limit; current kernels cap it lower and reject that value, and
# the docs now suggest 1000000000.
PRODUCTION_SYSCTL: dict[str, str] = {
    "fs.aio-max-nr": "524288",
    "fs.inotify.max_queued_events": "1048576",
    "fs.inotify.max_user_instances": "1048576",
    "fs.inotify.max_user_watches": "1048576",
    "kernel.dmesg_restrict": "1",
    "kernel.keys.maxbytes": "2000000",
    "kernel.keys.maxkeys": "2000",
    "net.core.bpf_jit_limit": "1000000000",
    "net.ipv4.neigh.default.gc_thresh3": "8192",
    "net.ipv6.neigh.default.gc_thresh3": "8192",
    "vm.max_map_count": "262144",
}
"""LXD's recommended production sysctl settings."""

HARDENED_PATHS: dict[Path, int] = {
    Path("/proc/sched_debug"): 0o400,
    Path("/sys/kernel/slab"): 0o700,
}
"""Paths that leak other containers' names (task names, per-cgroup slab caches) to
anyone who can read them, and the modes that make them root-only."""

TMPFILES_CONF = Path("/etc/tmpfiles.d/lxd-charm-hardening.conf")
"""Where the hardening is declared for systemd-tmpfiles, which re-applies it at boot:
/proc and /sys are rebuilt on every boot, so a chmod alone is lost."""

ROOT = Path("/")


def _under(root: Path, path: Path) -> Path:
    """`path` (absolute) resolved under `root`."""
    return root / path.relative_to(ROOT)


class _JsonState:
    """A small JSON object on disk, written atomically so a killed hook never leaves half."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise SysctlError(f"cannot read state file {self.path}: {e}") from e
        if not isinstance(data, dict):
            raise SysctlError(f"state file {self.path} does not hold a JSON object")
        return data

    def save(self, data: Mapping[str, Any]) -> None:
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
            partial.replace(self.path)
        except OSError as e:
            raise SysctlError(f"cannot write state file {self.path}: {e}") from e

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


# --- the sysctl seam -------------------------------------------------------------


class SysctlBackend(Protocol):
    """What `SysctlTuning` asks of the kernel and of the persisted sysctl files.

    Raises `SysctlError` for anything it cannot do, naming the key or file.
    """

    def read(self, key: str) -> str | None:
        """The kernel's live value for `key`, or None when this kernel has no such key."""
        ...

    def write(self, key: str, value: str) -> None:
        """Set `key` live only, as `sysctl -w` would (nothing is persisted)."""
        ...

    def persisted(self, app_name: str) -> dict[str, str] | None:
        """What `app_name`'s sysctl file sets, or None when it has none."""
        ...

    def persist(self, app_name: str, values: Mapping[str, str]) -> None:
        """Set `values` live and persist them as `app_name`'s sysctl file.

        All or nothing: a key the kernel refuses, or one another application's
        file sets differently, leaves the live values and the files as they were.
        """
        ...

    def remove(self, app_name: str) -> set[str]:
        """Delete `app_name`'s sysctl file; returns the keys other applications still set."""
        ...


class CharmlibsSysctl(SysctlBackend):
    """The kernel through `<root>/proc/sys`, the files through charmlibs-sysctl.

    charmlibs-sysctl has no way to read one key or to set one without persisting
    it, so reads and restores go to `/proc/sys` directly, as `sysctl` itself does.
    """

    def __init__(self, root: Path = ROOT) -> None:
        """Use the kernel under `root` (see the module docstring for another root)."""
        self.root = root

    def read(self, key: str) -> str | None:
        """The live value, from `/proc/sys` (dots are directories, as sysctl maps them)."""
        path = self._proc(key)
        if not path.is_file():
            return None
        try:
            return path.read_text().strip()
        except OSError as e:
            raise SysctlError(f"could not read the kernel's {key}: {e}") from e

    def write(self, key: str, value: str) -> None:
        """Write the live value to `/proc/sys`."""
        path = self._proc(key)
        try:
            path.write_text(f"{value}\n")
        except OSError as e:
            raise SysctlError(f"could not write {path}: {e}") from e

    def persisted(self, app_name: str) -> dict[str, str] | None:
        """Our file as charmlibs-sysctl wrote it (`key=value` lines under a comment)."""
        path = self._config(app_name).charm_filepath
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SysctlError(f"could not read {path}: {e}") from e
        return {
            key.strip(): value.strip()
            for key, _, value in (line.partition("=") for line in lines)
            if not key.startswith(("#", ";")) and value
        }

    def persist(self, app_name: str, values: Mapping[str, str]) -> None:
        """`Config.configure`: validated against the other files, rolled back on refusal."""
        config = self._config(app_name)
        try:
            config.configure(dict(values))
        except _charmlibs.Error as e:
            raise SysctlError(
                f"could not apply sysctl tuning ({', '.join(sorted(values))}): {e.message}"
            ) from e
        except OSError as e:
            raise SysctlError(f"could not write {config.charm_filepath}: {e}") from e

    def remove(self, app_name: str) -> set[str]:
        """`Config.remove`, which re-merges the other applications' files."""
        config = self._config(app_name)
        try:
            config.remove()
        except OSError as e:
            raise SysctlError(f"could not remove {config.charm_filepath}: {e}") from e
        return set(config)

    def _config(self, app_name: str) -> _charmlibs.Config:
        """charmlibs-sysctl's Config, once it is sure where the library will write.

        The library's file path is public; when it is not under `root`, the library
        would write the real `/etc/sysctl.d` and run the real `sysctl`, tuning this
        machine instead of the one under `root`.
        """
        config = _charmlibs.Config(app_name)
        if self.root != ROOT and not config.charm_filepath.is_relative_to(self.root):
            raise SysctlError(
                f"root is {self.root}, but charmlibs-sysctl would write "
                f"{config.charm_filepath} and run the real sysctl, tuning this machine's "
                "kernel; pass a backend for that root"
            )
        return config

    def _proc(self, key: str) -> Path:
        return _under(self.root, Path("/proc/sys", *key.split(".")))


# --- sysctl tuning -------------------------------------------------------------


class SysctlTuning:
    """LXD's production sysctl settings, applied and reverted on request."""

    STATE_FILE = "sysctl-tuning.json"

    def __init__(
        self,
        app_name: str,
        state_dir: Path,
        *,
        root: Path = ROOT,
        settings: Mapping[str, str] | None = None,
        backend: SysctlBackend | None = None,
    ) -> None:
        """Prepare to tune (or untune) the kernel for `app_name`.

        Args:
            app_name: names the charmlibs-sysctl file (`90-juju-<app_name>`), so several
                applications on one machine keep separate files.
            state_dir: where the kernel's original values are kept; must survive hooks.
            root: the filesystem root the default backend works under (see the module
                docstring for what that takes under a root other than `/`).
            settings: the keys and values to apply; LXD's production ones by default.
            backend: the kernel and its sysctl files; `CharmlibsSysctl(root)` by default.
        """
        self.app_name = app_name
        self.root = root
        self.settings = dict(PRODUCTION_SYSCTL if settings is None else settings)
        self.backend: SysctlBackend = backend if backend is not None else CharmlibsSysctl(root)
        self._state = _JsonState(state_dir / self.STATE_FILE)

    def apply(self, enabled: bool) -> bool:
        """Apply the tuning when `enabled`, otherwise revert it.

        Returns:
            True when it changed anything.

        Raises:
            SysctlError: the kernel or charmlibs-sysctl refused, naming the keys.
        """
        return self._enable() if enabled else self._disable()

    def _enable(self) -> bool:
        live = {key: self.backend.read(key) for key in self.settings}
        desired = {key: value for key, value in self.settings.items() if live[key] is not None}
        if skipped := sorted(set(self.settings) - set(desired)):
            logger.info("this kernel has no %s; not tuning them", ", ".join(skipped))
        # Record each key's value before we first change it, and never again: a re-run
        # must not mistake our own tuning for the machine's original.
        originals: dict[str, str] = self._state.load().get("originals", {})
        if unrecorded := [key for key in desired if key not in originals]:
            originals.update({key: self._read(key) for key in unrecorded})
            self._state.save({"originals": originals})
        if self._applied(desired):
            return False
        self.backend.persist(self.app_name, desired)
        logger.info("applied production sysctl tuning: %s", ", ".join(sorted(desired)))
        return True

    def _disable(self) -> bool:
        originals: dict[str, str] = self._state.load().get("originals", {})
        had_file = self.backend.persisted(self.app_name) is not None
        if not originals and not had_file:
            return False
        # Keys another application's sysctl file still sets stay as they are.
        still_wanted = self.backend.remove(self.app_name)
        for key, original in sorted(originals.items()):
            self._restore(key, original, still_wanted)
        self._state.clear()
        logger.info("reverted production sysctl tuning")
        return True

    def _restore(self, key: str, original: str, still_wanted: set[str]) -> None:
        """Put one key back live, as `sysctl -w` would, if it still holds our value.

        A value someone changed since we tuned it is theirs now; overwriting it with what
        the kernel had before us would undo their change, not ours.
        """
        if key in still_wanted:
            return
        current = self.backend.read(key)
        if current is None or current == original:
            return
        if current != self.settings.get(key):
            logger.info("%s was changed to %s since tuning; leaving it", key, current)
            return
        try:
            self.backend.write(key, original)
        except SysctlError as e:
            raise SysctlError(f"could not restore {key} to {original}: {e}") from e

    def _applied(self, desired: Mapping[str, str]) -> bool:
        """Whether our sysctl file and the live kernel both already hold `desired`."""
        if self.backend.persisted(self.app_name) != dict(desired):
            return False
        return all(self.backend.read(k) == v for k, v in desired.items())

    def _read(self, key: str) -> str:
        value = self.backend.read(key)
        if value is None:
            raise SysctlError(f"could not read the kernel's {key}: it has no such key")
        return value


# --- kernel hardening -----------------------------------------------------------


def _tmpfiles_conf(paths: Iterable[tuple[Path, int]]) -> str:
    lines = [
        "# Written by the LXD charm (kernel-hardening): keeps containers from learning",
        "# the names of other containers. Remove by setting kernel-hardening=false.",
    ]
    lines += [f"z {path} {mode:04o} - - -" for path, mode in paths]
    return "\n".join(lines) + "\n"


class KernelHardening:
    """Restrict the /proc and /sys files that leak container names, and undo it."""

    STATE_FILE = "kernel-hardening.json"

    def __init__(self, state_dir: Path, *, root: Path = ROOT) -> None:
        """Prepare to harden (or unharden) the paths in `HARDENED_PATHS`.

        Args:
            state_dir: where the original modes are kept; must survive hooks.
            root: the filesystem root every path is resolved under, for tests.
        """
        self.root = root
        self._state = _JsonState(state_dir / self.STATE_FILE)

    @property
    def tmpfiles_conf(self) -> Path:
        """The systemd-tmpfiles file under `root`."""
        return _under(self.root, TMPFILES_CONF)

    def apply(self, enabled: bool) -> bool:
        """Harden when `enabled`, otherwise put the original modes back.

        Paths this kernel does not have are skipped: /proc/sched_debug moved to debugfs
        in Linux 5.13, and /sys/kernel/slab exists only with SLUB.

        Returns:
            True when it changed anything.

        Raises:
            SysctlError: a mode or file could not be changed, naming the path.
        """
        return self._enable() if enabled else self._disable()

    def _enable(self) -> bool:
        present = {p: m for p, m in HARDENED_PATHS.items() if _under(self.root, p).exists()}
        originals: dict[str, int] = self._state.load().get("modes", {})
        if unrecorded := [p for p in present if str(p) not in originals]:
            originals.update({str(p): self._mode(p) for p in unrecorded})
            self._state.save({"modes": originals})
        changed = False
        for path, mode in present.items():
            changed |= self._chmod(path, mode)
        content = _tmpfiles_conf(HARDENED_PATHS.items())
        conf = self.tmpfiles_conf
        try:
            if not conf.is_file() or conf.read_text() != content:
                conf.parent.mkdir(parents=True, exist_ok=True)
                conf.write_text(content)
                changed = True
        except OSError as e:
            raise SysctlError(f"could not write {conf}: {e}") from e
        if changed:
            logger.info("hardened %s", ", ".join(str(p) for p in present) or "nothing")
        return changed

    def _disable(self) -> bool:
        originals: dict[str, int] = self._state.load().get("modes", {})
        changed = False
        for name, mode in sorted(originals.items()):
            if _under(self.root, Path(name)).exists():
                changed |= self._chmod(Path(name), mode)
        try:
            if self.tmpfiles_conf.exists():
                self.tmpfiles_conf.unlink()
                changed = True
        except OSError as e:
            raise SysctlError(f"could not remove {self.tmpfiles_conf}: {e}") from e
        self._state.clear()
        if changed:
            logger.info("reverted kernel hardening")
        return changed

    def _mode(self, path: Path) -> int:
        try:
            return stat.S_IMODE(_under(self.root, path).stat().st_mode)
        except OSError as e:
            raise SysctlError(f"could not read the mode of {path}: {e}") from e

    def _chmod(self, path: Path, mode: int) -> bool:
        if self._mode(path) == mode:
            return False
        try:
            _under(self.root, path).chmod(mode)
        except OSError as e:
            raise SysctlError(f"could not set {path} to mode {mode:04o}: {e}") from e
        return True
