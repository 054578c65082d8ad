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

Testing: both take a `root` that every path they touch is resolved under,
including charmlibs-sysctl's `/etc/sysctl.d` (its module constants are pointed
under `root` only for the duration of each call). The one thing `root` cannot
redirect is the `sysctl` command charmlibs-sysctl runs, so with a `root` other
than `/` a test must replace `charmlibs.sysctl._sysctl.check_output` with a fake
`sysctl` that reads and writes `<root>/proc/sys`; `SysctlTuning` refuses to run
the real command under another root, which would tune this machine's kernel.
"""

from __future__ import annotations

import contextlib
import json
import logging
import stat
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from charmlibs import sysctl as _charmlibs
from charmlibs.sysctl import _sysctl as _charmlibs_impl

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
    ) -> None:
        """Prepare to tune (or untune) the kernel for `app_name`.

        Args:
            app_name: names the charmlibs-sysctl file (`90-juju-<app_name>`), so several
                applications on one machine keep separate files.
            state_dir: where the kernel's original values are kept; must survive hooks.
            root: the filesystem root every path is resolved under (see the module
                docstring for what tests must also replace).
            settings: the keys and values to apply; LXD's production ones by default.
        """
        self.app_name = app_name
        self.root = root
        self.settings = dict(PRODUCTION_SYSCTL if settings is None else settings)
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
        desired = {key: value for key, value in self.settings.items() if self._has(key)}
        if skipped := sorted(set(self.settings) - set(desired)):
            logger.info("this kernel has no %s; not tuning them", ", ".join(skipped))
        # Record each key's value before we first change it, and never again: a re-run
        # must not mistake our own tuning for the machine's original.
        originals: dict[str, str] = self._state.load().get("originals", {})
        if unrecorded := [key for key in desired if key not in originals]:
            originals.update({key: self._read(key) for key in unrecorded})
            self._state.save({"originals": originals})
        with self._charmlibs() as config:
            if self._applied(config, desired):
                return False
            try:
                config.configure(desired)
            except _charmlibs.Error as e:
                raise SysctlError(
                    f"could not apply sysctl tuning ({', '.join(sorted(desired))}): {e.message}"
                ) from e
            except OSError as e:
                raise SysctlError(f"could not write {config.charm_filepath}: {e}") from e
        logger.info("applied production sysctl tuning: %s", ", ".join(sorted(desired)))
        return True

    def _disable(self) -> bool:
        originals: dict[str, str] = self._state.load().get("originals", {})
        with self._charmlibs() as config:
            had_file = config.charm_filepath.exists()
            if not originals and not had_file:
                return False
            try:
                config.remove()
            except OSError as e:
                raise SysctlError(f"could not remove {config.charm_filepath}: {e}") from e
            # Keys another application's sysctl file still sets stay as they are.
            still_wanted = set(config)
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
        if key in still_wanted or not self._has(key):
            return
        current = self._read(key)
        if current == original:
            return
        if current != self.settings.get(key):
            logger.info("%s was changed to %s since tuning; leaving it", key, current)
            return
        try:
            self._proc(key).write_text(f"{original}\n")
        except OSError as e:
            raise SysctlError(f"could not restore {key} to {original}: {e}") from e

    def _applied(self, config: _charmlibs.Config, desired: Mapping[str, str]) -> bool:
        """Whether our sysctl file and the live kernel both already hold `desired`."""
        try:
            lines = config.charm_filepath.read_text().splitlines()
        except FileNotFoundError:
            return False
        except OSError as e:
            raise SysctlError(f"could not read {config.charm_filepath}: {e}") from e
        on_disk = {
            key.strip(): value.strip()
            for key, _, value in (line.partition("=") for line in lines)
            if not key.startswith(("#", ";")) and value
        }
        return on_disk == dict(desired) and all(self._read(k) == v for k, v in desired.items())

    @contextlib.contextmanager
    def _charmlibs(self) -> Iterator[_charmlibs.Config]:
        """charmlibs-sysctl's Config, with its files under `root` for the duration."""
        if self.root == ROOT:
            yield _charmlibs.Config(self.app_name)
            return
        if getattr(_charmlibs_impl, "check_output", None) is subprocess.check_output:
            raise SysctlError(
                f"root is {self.root}, but charmlibs-sysctl would run the real sysctl and "
                "tune this machine's kernel; replace charmlibs.sysctl._sysctl.check_output"
            )
        saved = (_charmlibs_impl.SYSCTL_DIRECTORY, _charmlibs_impl.SYSCTL_FILENAME)
        directory = _under(self.root, saved[0])
        directory.mkdir(parents=True, exist_ok=True)
        _charmlibs_impl.SYSCTL_DIRECTORY = directory
        _charmlibs_impl.SYSCTL_FILENAME = directory / saved[1].name
        try:
            yield _charmlibs.Config(self.app_name)
        finally:
            _charmlibs_impl.SYSCTL_DIRECTORY, _charmlibs_impl.SYSCTL_FILENAME = saved

    def _proc(self, key: str) -> Path:
        """The /proc/sys file behind a key, as sysctl maps it (dots are directories)."""
        return _under(self.root, Path("/proc/sys", *key.split(".")))

    def _has(self, key: str) -> bool:
        return self._proc(key).is_file()

    def _read(self, key: str) -> str:
        try:
            return self._proc(key).read_text().strip()
        except OSError as e:
            raise SysctlError(f"could not read the kernel's {key}: {e}") from e


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
