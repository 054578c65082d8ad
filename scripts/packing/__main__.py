"""Build the charms here, or pack, lock, release them, or point a bundle at them.

    scripts/pack [CHARM ...] [--platform P]    build on this machine, then charmcraft analyse
    scripts/pack --charmcraft [CHARM ...]      `charmcraft pack` (snapd + LXD; every platform)
    scripts/pack --lock [CHARM ...]            rewrite uv.lock with constraints.txt's pins
    scripts/pack --local-bundle BUNDLE         print BUNDLE with absolute paths to the built charms
    scripts/pack --release CHANNEL FILE ...    upload .charm files to Charmhub, release them

CHARM is a charm name (``lxd-host``, ``https-requirer``) or a directory holding a
charmcraft.yaml; ``all`` means every charm, the integration tests' too. The
default build runs charmcraft's uv plugin through craft-parts on this
machine for one platform (default: Ubuntu 24.04 on this architecture) and
needs `tox -e pack`'s venv (charmcraft from PyPI, python3-apt).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from scripts.packing import PackingError, bundles, charmcraft, locks, release
from scripts.packing.projects import (
    CharmProject,
    all_charms,
    find,
    host_platform,
    product_charms,
)


def _projects(refs: list[str]) -> list[CharmProject]:
    if not refs:
        return product_charms()
    if refs == ["all"]:
        return all_charms()
    return [find(ref) for ref in refs]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/pack",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(__doc__ or "").split("\n\n", 1)[-1],
    )
    parser.add_argument("charms", nargs="*", metavar="CHARM")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--charmcraft", action="store_true", help="run `charmcraft pack`")
    mode.add_argument("--lock", action="store_true", help="rewrite each charm's uv.lock")
    mode.add_argument("--local-bundle", type=Path, metavar="BUNDLE")
    mode.add_argument("--release", metavar="CHANNEL", help="CHARM arguments are .charm files")
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        help="build only this platform (repeatable with --charmcraft); for "
        f"--local-bundle the platform whose .charm to use (default {host_platform()})",
    )
    parser.add_argument(
        "--destructive-mode", action="store_true", help="with --charmcraft: build on this machine"
    )
    parser.add_argument(
        "--no-analyse", action="store_true", help="skip charmcraft analyse after building"
    )
    return parser


def _build(projects: list[CharmProject], platforms: list[str], *, analyse: bool) -> None:
    """Build each charm for each platform; the .charm files land next to charmcraft.yaml.

    Every part's source is the repository root, so a .charm already lying in
    a charm's directory would be copied into the next build's pull: the old
    files go first, and the new ones are moved into place once all are built.
    """
    import shutil
    import tempfile

    from scripts.packing import analyse as analysis
    from scripts.packing import build

    wanted = [(p, name) for p in projects for name in platforms or [host_platform()]]
    for project, platform_name in wanted:
        project.charm_file(platform_name).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="pack-out-") as tmp:
        done = []
        for project, platform_name in wanted:
            built = build.build(project, platform_name, out_dir=Path(tmp))
            size = built.path.stat().st_size / 1e6
            dest = project.charm_file(platform_name)
            print(
                f"built {build.relative(dest)} in {built.seconds:.1f} s "
                f"({size:.1f} MB; pulled {built.pulled_bytes / 1e6:.1f} MB of source)"
            )
            if built.host_mismatch:
                print(f"  note: {built.host_mismatch}")
            if analyse:
                results = analysis.analyse(built.path)
                print(f"  charmcraft analyse: no errors ({len(results)} checks)")
            done.append((built.path, dest))
        for path, dest in done:
            shutil.move(path, dest)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.lock:
            for project in _projects(args.charms or ["all"]):
                print(f"locked {project.name}: {locks.lock(project)}")
        elif args.release:
            for line in release.release([Path(f) for f in args.charms], args.release):
                print(line)
        elif args.local_bundle:
            platform_name = (args.platform or [host_platform()])[0]
            data = bundles.load(args.local_bundle)
            local = bundles.resolve(
                data, bundle_dir=args.local_bundle.parent, platform=platform_name
            )
            sys.stdout.write(yaml.safe_dump(local, sort_keys=False))
        elif args.charmcraft:
            for project in _projects(args.charms):
                for path in charmcraft.pack(
                    project, args.platform, destructive=args.destructive_mode
                ):
                    print(f"packed {path}")
        else:
            _build(_projects(args.charms), args.platform, analyse=not args.no_analyse)
    except PackingError as e:
        print(f"scripts/pack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
