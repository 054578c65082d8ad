"""What the LXD charms share: the machine and LXD work, and their relation data.

The workload modules do not import ``ops``: they do the machine's and LXD's
work for any caller (both charms, the benchmarks, the demo), are testable
without Juju, and raise the one error hierarchy in :mod:`lxd_common.errors`,
which the charms turn into statuses and action failures.

:mod:`lxd_common.interfaces` is the exception, and on purpose: relation data
is Juju's, so its models and requirer classes use ``ops``. The lxd-https one
is also published as a standalone charm library, so it uses nothing of
``lxd_common`` but its errors (which the generator copies in). The workload
modules never import the interfaces, so they stay free of ``ops``.
"""
