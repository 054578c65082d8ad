"""What the LXD charms share: the machine and LXD work, and their relation data.

The workload modules do not import ``ops``: they do the machine's and LXD's
work for any caller (both charms, the benchmarks, the demo), are testable
without Juju, and raise the one error hierarchy in :mod:`lxd_common.errors`,
which the charms turn into statuses and action failures.

:mod:`lxd_common.interfaces` is the exception, and on purpose: relation data
is Juju's, so its models and requirer classes use ``ops``. They are the
PyPI package ``lxd-charms-interfaces`` (``lxd_charms_interfaces``, which
needs only ``ops``), re-exported there so the charms here and charms
elsewhere run one copy. The workload modules never import the interfaces,
so they stay free of ``ops``.
"""
