"""The README's option and action tables match the charms' charmcraft.yaml."""

from __future__ import annotations

from scripts import charm_docs


def test_readme_tables_are_generated_from_charmcraft_yaml() -> None:
    current = charm_docs.README.read_text()
    assert current == charm_docs.render(current), "run: python scripts/charm_docs.py"


def test_every_lxd_option_and_action_is_in_the_readme() -> None:
    import yaml

    meta = yaml.safe_load((charm_docs.REPO / "charms/lxd/charmcraft.yaml").read_text())
    readme = charm_docs.README.read_text()
    for name in [*meta["config"]["options"], *meta["actions"]]:
        assert f"| `{name}` |" in readme, name
