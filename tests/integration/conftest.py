"""The integration tier: the bundles deployed on a real Juju controller.

Run it with a controller bootstrapped (``juju bootstrap localhost``, LXD and
Juju snaps installed) and ``tox -e integration``. Without a reachable
controller the whole tier is skipped, with one line saying what it needs;
set ``LXD_TEST_REQUIRE_JUJU=1`` (CI's integration job does) to make that a
failure instead of a skip.

Each test module is one scenario on its own model: its tests are the steps,
run in order, and once a step fails the later ones are skipped rather than
piling up errors about a deployment that never came up. Models are
destroyed afterwards unless ``LXD_TEST_KEEP_MODELS=1``; a failed scenario
leaves ``juju status`` and the debug log in the work directory.

Why not pytest-operator: its releases (0.43.2 at the time of writing) pin
``pytest-asyncio<0.23``, and every pytest-asyncio of that range breaks at
collection on the pytest this project pins (9.x removed the fixture-manager
internals it reads), so merely installing pytest-operator would break the
tier. The two things it gave, an event loop for ``async def`` tests and a
model per module, are the few lines below; python-libjuju (``juju``) does
the rest, as it does inside pytest-operator.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.integration.helpers import Juju

REPO = Path(__file__).resolve().parents[2]
NEEDS = (
    "needs a reachable Juju controller and python-libjuju "
    "(`juju bootstrap localhost`, then `tox -e integration`)"
)


def _controller_problem() -> str | None:
    """Why the tier cannot run here, or None when a controller answers."""
    if importlib.util.find_spec("juju") is None:
        return "python-libjuju is not installed (run the tier with `tox -e integration`)"
    if shutil.which("juju") is None:
        return "the `juju` CLI is not on PATH (`sudo snap install juju`)"
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
        current = json.loads(found.stdout or "{}").get("current-controller")
        if not current:
            return "no current Juju controller (`juju bootstrap localhost` or `juju switch`)"
        answer = subprocess.run(
            ["juju", "models", "--format=json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "the current Juju controller did not answer within 60 s"
    except ValueError:
        return "`juju controllers` printed something other than JSON"
    if answer.returncode != 0:
        return f"controller {current!r} is not reachable: {_first_line(answer.stderr)}"
    return None


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


PROBLEM = _controller_problem()
if PROBLEM:
    # The test modules import python-libjuju: do not even collect them.
    collect_ignore_glob = ["test_*.py"]


def pytest_sessionstart(session: pytest.Session) -> None:
    if PROBLEM and os.environ.get("LXD_TEST_REQUIRE_JUJU") == "1":
        pytest.exit(f"integration tier {NEEDS}: {PROBLEM}", returncode=1)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if PROBLEM:
        terminalreporter.write_line(f"integration tier skipped: it {NEEDS}; {PROBLEM}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped tier is not a failure: nothing was collected on purpose.
    if PROBLEM and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.exitstatus = pytest.ExitCode.OK


# --- async tests, one event loop ---------------------------------------------------


@pytest.fixture(scope="session")
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One loop for the session: libjuju's connections live on it between tests."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(autouse=True)
def _event_loop_for_async_tests(event_loop: asyncio.AbstractEventLoop) -> None:
    """Makes ``event_loop`` available to `pytest_pyfunc_call` for every test."""


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests to completion on the session's loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    loop = pyfuncitem.funcargs["event_loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)
    wanted = inspect.signature(pyfuncitem.obj).parameters
    loop.run_until_complete(pyfuncitem.obj(**{n: pyfuncitem.funcargs[n] for n in wanted}))
    return True


# --- a scenario per module: steps in order, stop at the first failure -------------

_FAILED_STEP: dict[str, str] = {}


def _scenario(node: pytest.Item | pytest.Collector) -> str:
    """The test module a node belongs to (its node id up to ``::``)."""
    return node.nodeid.split("::", 1)[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        _FAILED_STEP.setdefault(_scenario(item), item.name)
    return report


def pytest_runtest_setup(item: pytest.Item) -> None:
    failed = _FAILED_STEP.get(_scenario(item))
    if failed:
        pytest.skip(f"an earlier step of this scenario failed: {failed}")


# --- charms and models ----------------------------------------------------------


@pytest.fixture(scope="session")
def workdir() -> Path:
    """Files for the juju CLI (bundles, diagnostics): inside the checkout, which the
    juju snap can read when the checkout is under the home directory (not /tmp)."""
    base = Path(os.environ.get("TOX_ENV_DIR") or REPO / ".tox" / "integration")
    path = Path(os.environ.get("LXD_TEST_WORKDIR") or base / "tmp" / "juju")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def charm_files() -> dict[str, Path]:
    """Every charm the scenarios deploy, packed for this machine's platform.

    Charms already packed (``scripts/pack --platform P all``, as CI does in
    an earlier step) are used as they are; missing ones are packed here,
    which needs charmcraft. ``LXD_TEST_PLATFORM`` picks another platform.
    """
    from scripts.packing import PackingError, charmcraft
    from scripts.packing.projects import all_charms, host_platform

    platform_name = os.environ.get("LXD_TEST_PLATFORM") or host_platform()
    files = {}
    for project in all_charms():
        path = project.charm_file(platform_name)
        if not path.is_file():
            try:
                charmcraft.pack(project, [platform_name])
            except PackingError as e:
                pytest.fail(f"{project.name} is not packed for {platform_name}: {e}")
        files[project.name] = path
    return files


@pytest.fixture(scope="module")
def juju(
    request: pytest.FixtureRequest, event_loop: asyncio.AbstractEventLoop, workdir: Path
) -> Iterator[Juju]:
    """A fresh model for the module's scenario, destroyed afterwards."""
    from tests.integration.helpers import Juju

    scenario = re.sub(r"[^a-z0-9]+", "-", request.module.__name__.rsplit(".", 1)[-1].lower())
    name = f"lxd-{scenario.removeprefix('test-')}-{os.urandom(2).hex()}"
    model = event_loop.run_until_complete(Juju.create(name, workdir))
    yield model
    failed = _scenario(request.node) in _FAILED_STEP
    keep = os.environ.get("LXD_TEST_KEEP_MODELS") == "1"
    event_loop.run_until_complete(model.close(keep=keep, failed=failed))
