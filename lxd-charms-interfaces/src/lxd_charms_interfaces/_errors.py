"""The one error this package raises."""

from __future__ import annotations

__all__ = ["InterfaceError"]


class InterfaceError(ValueError):
    """Relation data that does not follow its interface (lxd, lxd-https), naming the field.

    A `ValueError`, because it is always bad input from the other side of a
    relation (or a bad argument from the charm itself), never a fault of the
    machine. Its message names the field and never contains certificate text.
    """
