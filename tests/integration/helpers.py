"""What the integration tests do to a Juju model, in a few readable verbs.

Every verb takes pytest-operator's ``ops_test``, which holds the module's
model: python-libjuju (``ops_test.model``) for what it does well (watching
status, units, actions, relations) and the ``juju`` CLI (``ops_test.juju``,
pointed at the same model) for what only the CLI does well (deploying a
bundle exactly as an operator would, spaces, storage listings, task
messages). Commands run on units go through ``juju exec``; LXD is asked with
``lxc query``, which returns the REST API's own JSON rather than a table.

The ``juju`` snap can only read files under the user's home directory, so
every file handed to the CLI (bundles) is written to ``ops_test.tmp_path``,
which ``conftest.py`` places inside the checkout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import shlex
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from juju.model import Model
from pytest_operator.plugin import OpsTest

from lxd_common.certs import fingerprint
from scripts.packing import bundles

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "bundles"

#: Deploying LXD units (snap install, initialisation, cluster joins) on VMs takes a while.
DEPLOY_TIMEOUT = float(os.environ.get("LXD_TEST_DEPLOY_TIMEOUT", 45 * 60))
SETTLE_TIMEOUT = float(os.environ.get("LXD_TEST_SETTLE_TIMEOUT", 20 * 60))
#: LXD runs instances and needs block devices for its storage: on an LXD
#: cloud the units are virtual machines, sized for a 10 GiB `local` volume.
LXD_CONSTRAINTS = os.environ.get(
    "LXD_TEST_LXD_CONSTRAINTS", "virt-type=virtual-machine cores=2 mem=2G root-disk=20G"
)
#: Where the `local` storage comes from; `loop` works on every cloud's VMs.
LXD_STORAGE = os.environ.get("LXD_TEST_LXD_STORAGE", "loop,10G")
#: Model config for every test model: frequent update-status, so the charms'
#: retries (a refused removal, a late join) show up within minutes.
MODEL_CONFIG = {"update-status-hook-interval": "1m"}


class CommandError(AssertionError):
    """A command on a unit, a CLI call or an action did not succeed."""


@dataclass(frozen=True)
class ActionOutcome:
    """What an action returned."""

    status: str
    results: dict[str, Any]
    message: str

    @property
    def ok(self) -> bool:
        """True when the action completed (rather than failed)."""
        return self.status == "completed"


def model(ops_test: OpsTest) -> Model:
    """The module's model (``ops_test.model``, which is only None before the fixture ran)."""
    assert ops_test.model is not None, "ops_test has no model"
    return ops_test.model


# --- the juju CLI ------------------------------------------------------------


async def juju_cli(ops_test: OpsTest, *args: str) -> str:
    """Run ``juju ARGS`` on the module's model; its stdout.

    Raises:
        CommandError: a non-zero exit, with juju's message.
    """
    code, out, err = await ops_test.juju(*args)
    if code != 0:
        raise CommandError(f"juju {' '.join(args)}: {(err or out).strip()}")
    return str(out)


def write_yaml(ops_test: OpsTest, filename: str, data: Mapping[str, Any]) -> Path:
    """Write YAML where the juju snap can read it (the model's tmp_path, in the checkout)."""
    path = ops_test.tmp_path / filename
    path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
    return path


async def deploy_bundle(
    ops_test: OpsTest, bundle: Mapping[str, Any], *, trust: bool = False
) -> None:
    """``juju deploy`` a bundle, as an operator would."""
    path = write_yaml(ops_test, "bundle.yaml", bundle)
    await juju_cli(ops_test, "deploy", str(path), *(["--trust"] if trust else []))


async def save_diagnostics(ops_test: OpsTest) -> None:
    """Status and debug log in the model's tmp_path, which CI keeps as an artifact."""
    for filename, args in (
        ("juju-status.yaml", ["status", "--format=yaml", "--relations", "--storage"]),
        ("juju-debug-log.txt", ["debug-log", "--replay", "--no-tail", "--level=DEBUG"]),
    ):
        try:
            output = await asyncio.wait_for(juju_cli(ops_test, *args), 300)
        except (CommandError, asyncio.TimeoutError) as e:
            output = f"could not collect: {e!r}"
        (ops_test.tmp_path / filename).write_text(output)


async def spaces(
    ops_test: OpsTest,
) -> dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """Space name -> its subnets."""
    data = json.loads(await juju_cli(ops_test, "spaces", "--format=json"))
    found = {}
    for space in data.get("spaces", []):
        subnets = space.get("subnets") or {}
        cidrs = subnets.keys() if isinstance(subnets, dict) else (s["cidr"] for s in subnets)
        found[space["name"]] = [ipaddress.ip_network(cidr) for cidr in cidrs]
    return found


async def ensure_space(ops_test: OpsTest, name: str, cidr: str | None) -> None:
    """Make sure a space exists in this model (spaces are per model), with ``cidr`` in it."""
    if name in await spaces(ops_test):
        return
    if not cidr:
        raise CommandError(f"space {name!r} does not exist and no subnet was given for it")
    try:
        await juju_cli(ops_test, "reload-spaces")  # LXD networks created after bootstrap
    except CommandError as e:
        logger.info("reload-spaces: %s", e)
    await juju_cli(ops_test, "add-space", name, cidr)


async def space_bindings(ops_test: OpsTest, *endpoints: str) -> dict[str, str]:
    """Bindings asked for by ``LXD_TEST_<ENDPOINT>_SPACE`` (and ``..._SUBNET``), created here.

    CI binds `https` to a space on a second LXD network, so the tests show
    that listeners follow the binding and not the first address.
    """
    bindings = {}
    for endpoint in endpoints:
        space = os.environ.get(f"LXD_TEST_{endpoint.upper()}_SPACE")
        if space:
            subnet = os.environ.get(f"LXD_TEST_{endpoint.upper()}_SUBNET")
            await ensure_space(ops_test, space, subnet)
            bindings[endpoint] = space
    return bindings


async def storage_location(ops_test: OpsTest, unit: str, storage: str) -> str:
    """Where a unit's storage instance is attached (``/dev/loop3``)."""
    data = json.loads(await juju_cli(ops_test, "storage", "--format=json"))
    for storage_id, info in (data.get("storage") or {}).items():
        if not storage_id.startswith(f"{storage}/"):
            continue
        attachment = ((info.get("attachments") or {}).get("units") or {}).get(unit)
        if attachment and attachment.get("location"):
            return str(attachment["location"])
    raise CommandError(f"no {storage} storage attached to {unit}: {data}")


# --- units -------------------------------------------------------------------


async def run_on_unit(ops_test: OpsTest, unit: str, command: str, *, timeout: float = 300) -> str:
    """Run a shell command on a unit (``juju exec``, in a hook context); its stdout.

    Raises:
        CommandError: a non-zero exit, with the command's stderr.
    """
    action = await model(ops_test).units[unit].run(command, timeout=timeout, block=True)
    results = action.results
    code = int(results.get("return-code", results.get("Code", 0)))
    if code != 0:
        stderr = results.get("stderr", results.get("Stderr", ""))
        raise CommandError(f"{unit}: {command!r} exited {code}: {stderr.strip()}")
    return str(results.get("stdout", results.get("Stdout", "")))


async def lxc(ops_test: OpsTest, unit: str, *args: str) -> str:
    """Run the snap's ``lxc`` on a unit; its stdout."""
    quoted = " ".join(shlex.quote(arg) for arg in args)
    return await run_on_unit(ops_test, unit, f"PATH=/snap/bin:$PATH lxc {quoted}")


async def lxc_query(ops_test: OpsTest, unit: str, path: str) -> Any:
    """Ask the unit's LXD for an API path (``/1.0/cluster/members?recursion=1``)."""
    return json.loads(await lxc(ops_test, unit, "query", path))


async def bind_address(ops_test: OpsTest, unit: str, endpoint: str) -> str:
    """The address Juju gives the unit for an endpoint, in its bound space."""
    return (await run_on_unit(ops_test, unit, f"network-get {endpoint} --bind-address")).strip()


async def run_action(ops_test: OpsTest, unit: str, action: str, **params: str) -> ActionOutcome:
    """Run an action and wait for it; a failure is returned, not raised."""
    started = await model(ops_test).units[unit].run_action(action, **params)
    finished = await started.wait()
    message = ""
    if finished.status != "completed":
        task: dict[str, Any] = json.loads(
            await juju_cli(ops_test, "show-task", started.entity_id, "--format=json")
        )
        if "status" not in task and len(task) == 1:  # keyed by task id
            task = next(iter(task.values()))
        message = str(task.get("message", ""))
    return ActionOutcome(finished.status, dict(finished.results), message)


async def action_results(
    ops_test: OpsTest, unit: str, action: str, **params: str
) -> dict[str, Any]:
    """Run an action that must succeed; its results."""
    outcome = await run_action(ops_test, unit, action, **params)
    if not outcome.ok:
        raise CommandError(f"{unit} {action} {outcome.status}: {outcome.message}")
    return outcome.results


async def leader(ops_test: OpsTest, app: str) -> str:
    """The name of the application's leader unit."""
    for unit in model(ops_test).applications[app].units:
        if await unit.is_leader_from_status():
            return str(unit.name)
    raise CommandError(f"{app} has no leader")


def units(ops_test: OpsTest, app: str) -> list[str]:
    """The application's unit names, sorted by number."""
    names = [unit.name for unit in model(ops_test).applications[app].units]
    return sorted(names, key=lambda name: int(name.split("/")[1]))


def status_message(ops_test: OpsTest, unit: str) -> tuple[str, str]:
    """A unit's workload status and message."""
    entity = model(ops_test).units[unit]
    return entity.workload_status, entity.workload_status_message


# --- waiting -----------------------------------------------------------------


async def settle(
    ops_test: OpsTest,
    *apps: str,
    status: str | None = "active",
    timeout: float = SETTLE_TIMEOUT,
    **kw: Any,
) -> None:
    """Wait until the apps' units are idle (and in ``status``)."""
    await model(ops_test).wait_for_idle(
        apps=list(apps), status=status, timeout=timeout, idle_period=30, **kw
    )


async def wait_until(
    what: str, check: Callable[[], Awaitable[bool]], *, timeout: float = SETTLE_TIMEOUT
) -> None:
    """Poll an async ``check()`` every 10 s until it returns true.

    Raises:
        AssertionError: still false after ``timeout`` seconds, naming ``what``.
    """
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if await check():
                return
        except CommandError as e:
            logger.info("waiting for %s: %s", what, e)
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(10)


# --- bundles and certificates ------------------------------------------------


def bundle_for_test(
    name: str,
    charm_files: Mapping[str, Path],
    *,
    bindings: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``bundles/<name>.yaml`` deploying the charms packed here, sized for a test cloud.

    The LXD application gets `LXD_CONSTRAINTS` and, when the bundle gives it
    storage, `LXD_STORAGE`; ``bindings`` override the bundle's (for example
    ``LXD_TEST_HTTPS_SPACE``).
    """
    path = BUNDLES / f"{name}.yaml"
    bundle = bundles.localise(bundles.load(path), charm_files, bundle_dir=path.parent)
    lxd = bundle["applications"].get("lxd")
    if lxd is not None:
        lxd["constraints"] = LXD_CONSTRAINTS
        if "storage" in lxd:
            lxd["storage"] = {"local": LXD_STORAGE}
        if bindings:
            lxd["bindings"] = {**lxd.get("bindings", {}), **bindings}
    return bundle


def presented_fingerprint(address: str) -> str:
    """SHA-256 fingerprint of the certificate a TLS server presents at ``host:port``."""
    host, _, port = address.rpartition(":")
    pem = ssl.get_server_certificate((host.strip("[]"), int(port)), timeout=30)
    return fingerprint(pem)


def in_space(address: str, subnets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """True when ``address`` lies in one of the space's subnets."""
    ip = ipaddress.ip_address(address)
    return any(ip in subnet for subnet in subnets)


def host_port(address: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets as LXD writes it."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def trusted_by(address: str, certificate: str, private_key: str, workdir: Path) -> bool:
    """True when the LXD at ``host:port`` says a client with this certificate is trusted.

    Blocking (pylxd); call it with ``asyncio.to_thread``. The server's own
    certificate is checked separately (`presented_fingerprint`): LXD's is
    self-signed and names no network address, so TLS verification is off.
    ``workdir`` (``ops_test.tmp_path``) holds the client's certificate files.
    """
    import warnings

    import pylxd

    cert_file = workdir / "client.crt"
    key_file = workdir / "client.key"
    cert_file.write_text(certificate)
    key_file.write_text(private_key)
    key_file.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # InsecureRequestWarning: see above
        client = pylxd.Client(
            endpoint=f"https://{address}", cert=(str(cert_file), str(key_file)), verify=False
        )
        return bool(client.trusted)
