"""What the LXD charms share, with no dependency on ops.

Modules, one job each:

- :mod:`lxd_common.lxd`: a client for LXD daemons (socket or HTTPS): readiness,
  preseed, server config, trust store, cluster join tokens and members.
- :mod:`lxd_common.certs`: client certificates: generate, load, validate,
  fingerprint, and repair a PEM mangled by a shell or an action argument.
- :mod:`lxd_common.endpoints`: LXD addresses normalised the way Juju does.
- :mod:`lxd_common.snap`: the LXD snap: channel, refresh, snap config, sideloading.
- :mod:`lxd_common.sysctl`: production kernel tuning and hardening.
- :mod:`lxd_common.errors`: every error the above raise, as one hierarchy.

Nothing here imports ``ops``: charms translate these errors into statuses
and action failures, and the modules stay testable on their own.
"""
