"""Each decision of `lxd_integrator.config`, one wrong answer each (pure)."""

from __future__ import annotations

import pytest

from lxd_integrator.config import IntegratorConfig


class Secret:
    """What a `type: secret` option hands the charm, reduced to what the config reads."""

    id = "secret:key"

    def get_content(self, *, refresh: bool = False) -> dict[str, str]:
        return {"client-key": "KEY"}


def test_no_option_set_means_no_ceiling_and_no_deprecated_key() -> None:
    config = IntegratorConfig()
    assert config.project_ceiling() is None
    assert config.uses_deprecated_key() is False


def test_a_key_from_the_secret_is_not_the_deprecated_option() -> None:
    config = IntegratorConfig(lxd_client_key_secret=Secret()).with_client_key("KEY")
    assert config.uses_deprecated_key() is False
    assert IntegratorConfig(lxd_client_key="KEY").uses_deprecated_key() is True


def test_the_config_is_constructed_by_keyword_only() -> None:
    """`load_config` passes options by name; a positional call could swap two PEM fields."""
    with pytest.raises(TypeError):
        IntegratorConfig("https://10.0.0.1:8443")  # type: ignore[call-arg]
