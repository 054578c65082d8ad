"""Form a real 3-member LXD cluster on this machine with `lxd_common`, then clean up.

This is what the charms do under Juju, minus Juju: three LXD daemons start on
loopback addresses, the first is initialised from a preseed and bootstraps
the cluster, the others join with tokens it issues, a client certificate is
trusted and used over HTTPS, and a member is removed again. Every step is a
call into `lxd_common`, the package both charms are built on.

Run as root (LXD daemons need it): ``tox -e demo`` or ``python -m demo``.
"""

from __future__ import annotations

import argparse
import sys
import time

from lxd_common.certs import generate_client_certificate
from lxd_common.errors import LxdCommonError, MemberExistsError
from lxd_common.lxd import LxdClient
from tests.harness.lxd_daemons import DaemonPool, LxdDaemon, ensure_lxd_installed

BOOTSTRAP_PRESEED = """
config:
  core.https_address: {address}
storage_pools:
- name: local
  driver: dir
profiles:
- name: default
  devices:
    root: {{path: /, pool: local, type: disk}}
"""


def step(message: str) -> None:
    """Narrate one step, so the output reads as the story of what happened."""
    print(f"==> {message}", flush=True)


def form_cluster(daemons: list[LxdDaemon]) -> None:
    """Bootstrap on the first daemon, then join the others with tokens it issues."""
    leader, *joiners = daemons
    lxd = leader.client()
    step(f"{leader.name}: apply the bootstrap preseed and enable clustering on {leader.address}")
    lxd.apply_preseed(BOOTSTRAP_PRESEED.format(address=leader.address))
    lxd.cluster.enable(leader.name, leader.address)
    member_config = lxd.cluster.member_config()
    for joiner in joiners:
        token = lxd.cluster.add_join_token(joiner.name)
        step(f"{leader.name}: issued a join token for {joiner.name} (not printed: it is a secret)")
        joiner.client().join_cluster(joiner.name, joiner.address, token.token, member_config)
        step(f"{joiner.name}: joined at {joiner.address}")


def show_members(lxd: LxdClient) -> None:
    """Print the cluster as LXD reports it, not as we think it is."""
    print(f"{'MEMBER':<8} {'URL':<26} {'STATUS':<8} ROLES")
    for member in lxd.cluster.members():
        print(f"{member.name:<8} {member.url:<26} {member.status:<8} {','.join(member.roles)}")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3, help="cluster size (default 3)")
    args = parser.parse_args(argv)
    problem = ensure_lxd_installed()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    started = time.monotonic()
    with DaemonPool() as pool:
        try:
            step(f"start {args.members} LXD daemons on loopback")
            daemons = pool.start(args.members)
            form_cluster(daemons)
            leader = daemons[0]
            lxd = leader.client()
            show_members(lxd)

            step("trust a new client certificate, restricted to project 'demo'")
            lxd.pylxd.projects.create("demo")
            pair = generate_client_certificate("demo-client")
            entry = lxd.trust.add(pair.certificate, name="demo-client", projects=["demo"])
            step(f"trusted {entry.name} ({entry.fingerprint[:12]}...)")
            for daemon in daemons:
                with LxdClient.remote(daemon.address, pair, daemon.server_cert) as remote:
                    projects = sorted(p.name for p in remote.pylxd.projects.all())
                    step(f"{daemon.name} over HTTPS with that certificate sees {projects}")

            try:
                lxd.cluster.add_join_token(daemons[-1].name)
            except MemberExistsError as e:
                step(f"a second token for {daemons[-1].name} is refused: {e}")

            step(f"remove {daemons[-1].name} from the cluster")
            lxd.cluster.remove_member(daemons[-1].name)
            show_members(lxd)
        except LxdCommonError as e:
            print(f"demo failed: {e}", file=sys.stderr)
            return 1
        finally:
            step("stop the daemons and remove their state")
    print(f"done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
