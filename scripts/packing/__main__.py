"""Pack the charms, or stage, lock, release them, or point a bundle at them.

    scripts/pack [CHARM ...] [--platform P]    charmcraft pack (default: lxd, lxd-integrator)
    scripts/pack --stage DIR [CHARM ...]       what the .charm would hold, without charmcraft
    scripts/pack --lock [CHARM ...]            rewrite uv.lock with constraints.txt's pins
    scripts/pack --local-bundle BUNDLE         print BUNDLE deploying the charms packed here
    scripts/pack --release CHANNEL FILE ...    upload .charm files to Charmhub, release them

CHARM is a charm name (``lxd``, ``https-requirer``) or a directory holding a
charmcraft.yaml; ``all`` means every charm, the integration tests' too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

from scripts.packing import PackingError, bundles, charmcraft, locks, release, stage
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
    mode.add_argument("--stage", type=Path, metavar="DIR", help="stage into DIR/<charm>/")
    mode.add_argument("--lock", action="store_true", help="rewrite each charm's uv.lock")
    mode.add_argument("--local-bundle", type=Path, metavar="BUNDLE")
    mode.add_argument("--release", metavar="CHANNEL", help="CHARM arguments are .charm files")
    parser.add_argument(
        "--no-deps",
        action="store_true",
        help="with --stage: install only lxd_common into the venv (works offline)",
    )
    parser.add_argument(
        "--platform",
        action="append",
        default=[],
        help="pack only this platform (repeatable); for --local-bundle the platform "
        f"whose .charm to use (default {host_platform()})",
    )
    parser.add_argument(
        "--destructive-mode", action="store_true", help="charmcraft builds on this machine"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.stage:
            with tempfile.TemporaryDirectory() as tmp:
                wheel = stage.build_common_wheel(Path(tmp))
                for project in _projects(args.charms):
                    dest = stage.stage(
                        project,
                        args.stage / project.name,
                        common_wheel=wheel,
                        with_deps=not args.no_deps,
                    )
                    print(f"staged {project.name} in {dest}")
        elif args.lock:
            for project in _projects(args.charms or ["all"]):
                print(f"locked {project.name}: {locks.lock(project)}")
        elif args.release:
            for line in release.release([Path(f) for f in args.charms], args.release):
                print(line)
        elif args.local_bundle:
            platform_name = (args.platform or [host_platform()])[0]
            files = {}
            for project in all_charms():
                path = project.charm_file(platform_name)
                if path.is_file():
                    files[project.name] = path
            data = bundles.load(args.local_bundle)
            local = bundles.localise(data, files, bundle_dir=args.local_bundle.parent)
            sys.stdout.write(yaml.safe_dump(local, sort_keys=False))
        else:
            for project in _projects(args.charms):
                for path in charmcraft.pack(
                    project, args.platform, destructive=args.destructive_mode
                ):
                    print(f"packed {path}")
    except PackingError as e:
        print(f"scripts/pack: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
