"""The integration tier: the bundles deployed on a real Juju controller.

Run it with a controller bootstrapped (``juju bootstrap localhost``, LXD,
Juju and charmcraft snaps installed) and ``tox -e integration``. Without a
reachable controller the whole tier is skipped, with one line saying what
it needs; set ``LXD_TEST_REQUIRE_JUJU=1`` (CI's integration job does) to
make that a failure instead of a skip.

The tests run on pytest-operator and python-libjuju: each test module is
one scenario on the model pytest-operator's ``ops_test`` fixture creates for
it, and its tests are the steps, in order. Every step is marked
``abort_on_fail`` (``pytestmark`` in each module), so once one fails the
later ones are reported as xfailed ("aborted") rather than piling up errors
about a deployment that never came up; that scenario's ``juju status`` and
debug log are then saved next to its bundle in ``ops_test.tmp_path``.
pytest-operator's own options work as usual (``--keep-models``,
``--model``, ``--controller``, ``--basetemp``...); models are destroyed
afterwards with their storage.

The skip happens before any of pytest-operator's fixtures run (they fail
outright without the ``juju`` and ``charmcraft`` CLIs or a controller): the
test modules are then not even collected. pytest-operator 0.43 (the latest)
needs pytest-asyncio<0.23, which fails at collection on pytest 9 (it reads
``FixtureManager._arg2fixturedefs``, gone there), hence pytest 8 in
constraints.txt.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_operator.plugin import OpsTest

REPO = Path(__file__).resolve().parents[2]
NEEDS = (
    "needs a reachable Juju controller, the juju and charmcraft CLIs and pytest-operator "
    "(`juju bootstrap localhost`, then `tox -e integration`)"
)
PROBLEM = pytest.StashKey[str | None]()


def _controller_problem(controller: str | None) -> str | None:
    """Why the tier cannot run here, or None when a controller answers."""
    if importlib.util.find_spec("pytest_operator") is None:
        return "pytest-operator is not installed (run the tier with `tox -e integration`)"
    for cli, install in (("juju", "juju"), ("charmcraft", "charmcraft --classic")):
        if shutil.which(cli) is None:
            return f"the `{cli}` CLI is not on PATH (`sudo snap install {install}`)"
    try:
        found = subprocess.run(
            ["juju", "controllers", "--format=json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if found.returncode != 0:
            return f"`juju controllers` failed: {_first_line(found.stderr)}"
        current = controller or json.loads(found.stdout or "{}").get("current-controller")
        if not current:
            return "no current Juju controller (`juju bootstrap localhost` or `juju switch`)"
        answer = subprocess.run(
            ["juju", "models", "--format=json", "--controller", current],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the Juju controller did not answer within 60 s"
    except ValueError:
        return "`juju controllers` printed something other than JSON"
    if answer.returncode != 0:
        return f"controller {current!r} is not reachable: {_first_line(answer.stderr)}"
    return None


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


@pytest.hookimpl(tryfirst=True)  # before pytest's tmp_path factory reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    config.stash[PROBLEM] = _controller_problem(config.getoption("--controller", None))
    # Test models' storage is test data: destroy it with the model.
    if hasattr(config.option, "destroy_storage"):
        config.option.destroy_storage = True
    # The juju snap reads files (bundles) only under the home directory, so
    # ops_test.tmp_path stays in the checkout: under tox's env directory, as
    # pytest-operator would put it, or in .tox/integration without tox.
    if config.option.basetemp is None:
        env_dir = Path(os.environ.get("TOX_ENV_DIR") or REPO / ".tox" / "integration")
        config.option.basetemp = env_dir / "tmp" / "pytest"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Without a controller the scenarios are not even collected, so neither
    # python-libjuju nor pytest-operator's fixtures get to fail on it.
    name = collection_path.name
    if config.stash[PROBLEM] and name.startswith("test_") and name.endswith(".py"):
        return True
    return None


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = session.config.stash[PROBLEM]
    if problem and os.environ.get("LXD_TEST_REQUIRE_JUJU") == "1":
        pytest.exit(f"integration tier {NEEDS}: {problem}", returncode=1)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    problem = config.stash[PROBLEM]
    if problem:
        terminalreporter.write_line(f"integration tier skipped: it {NEEDS}; {problem}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped tier is not a failure: nothing was collected on purpose.
    if session.config.stash[PROBLEM] and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


# --- charms and models ----------------------------------------------------------


@pytest.fixture(scope="session")
def charm_files() -> dict[str, Path]:
    """Every charm the scenarios deploy, built for this machine's platform.

    The charms are built beforehand (``tox -e pack``, which tox's envlist
    runs before this tier; or ``scripts/pack --charmcraft --platform P all``
    on a machine with charmcraft's snap). A missing one fails the run with
    the command that builds it. ``LXD_TEST_PLATFORM`` picks another platform.
    """
    from scripts.packing.projects import all_charms, host_platform

    platform_name = os.environ.get("LXD_TEST_PLATFORM") or host_platform()
    files = {}
    for project in all_charms():
        path = project.charm_file(platform_name)
        if not path.is_file():
            pytest.fail(
                f"{path} is not built: run `tox -e pack`, or "
                f"`scripts/pack --charmcraft --platform {platform_name} all`"
            )
        files[project.name] = path
    return files


# pytest-asyncio comes with pytest-operator; without them the tier is skipped
# (see above), and this conftest must still load (e.g. `pytest tests` in the
# unit env).
if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture(scope="module", autouse=True)
    async def scenario_model(ops_test: OpsTest) -> AsyncIterator[None]:
        """Sets up the model ``ops_test`` made for the module; keeps diagnostics of a failure.

        The model gets `MODEL_CONFIG`. When a step failed (the scenario was
        aborted), ``juju status`` and the debug log are saved in
        ``ops_test.tmp_path`` before pytest-operator destroys the model.
        """
        from tests.integration.helpers import MODEL_CONFIG, model, save_diagnostics

        await model(ops_test).set_config(dict(MODEL_CONFIG))
        yield
        if ops_test.aborted:
            await save_diagnostics(ops_test)
