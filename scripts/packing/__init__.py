"""Packing the charms: with charmcraft where it runs, as a staged tree where it cannot.

`scripts/pack` is the command line (``scripts/pack --help``); this package is
what it runs, importable by tests:

- :mod:`scripts.packing.projects`: the charm projects in this repository
  (the two product charms and the integration tests' requirer charms), read
  from their ``charmcraft.yaml``.
- :mod:`scripts.packing.stage`: lay out what charmcraft would put in a
  ``.charm`` (metadata, ``dispatch``, ``src/``, a venv holding ``lxd_common``)
  without charmcraft, so its content can be inspected where charmcraft
  cannot run (it needs snapd and LXD-managed build instances).
- :mod:`scripts.packing.charmcraft`: run ``charmcraft pack`` for real, with
  Charmcraft's monorepo support switched on.
- :mod:`scripts.packing.locks`: write each charm's ``uv.lock`` with the
  versions pinned in ``constraints.txt``, and check that they still match.
- :mod:`scripts.packing.bundles`: point a bundle at locally packed charms,
  for deploying what was just built (the integration tests do this).
- :mod:`scripts.packing.release`: upload packed charms to Charmhub and
  release them to a channel (CI's release workflow).

Every failure a user can fix raises `PackingError` with a message that says
what to do.
"""

from __future__ import annotations


class PackingError(Exception):
    """Packing cannot go on; the message says what is missing and how to get it."""
