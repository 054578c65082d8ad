"""The project's main job on a machine without Juju: see ``python -m demo``."""
