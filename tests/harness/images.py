"""A tiny container image built here: no image server is reachable from this machine.

The image is a unified LXD tarball: ``metadata.yaml`` plus a ``rootfs`` holding
Debian's static busybox and the symlinks an init process needs. It boots in
well under a second, which keeps instance tests cheap.
"""

from __future__ import annotations

import io
import platform
import shutil
import tarfile
import time
from pathlib import Path

import yaml

APPLETS = ("sh", "init", "ls", "cat", "sleep", "mount", "ps", "hostname")


def build_busybox_image(destination: Path) -> Path:
    """Write ``busybox.tar.gz`` into ``destination`` and return its path."""
    busybox = shutil.which("busybox")
    if busybox is None:
        raise RuntimeError("busybox is not installed (apt-get install busybox-static)")
    metadata = {
        "architecture": platform.machine(),
        "creation_date": int(time.time()),
        "properties": {"description": "busybox test image", "os": "busybox", "release": "test"},
    }
    path = destination / "busybox.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        _add_bytes(tar, "metadata.yaml", yaml.safe_dump(metadata).encode())
        for directory in (
            "rootfs",
            *(
                f"rootfs/{d}"
                for d in ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "run")
            ),
        ):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="rootfs/bin/busybox")
        for applet in APPLETS:
            _add_link(tar, f"rootfs/bin/{applet}", "busybox")
        _add_link(tar, "rootfs/sbin/init", "../bin/busybox")
    return path


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _add_link(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)
