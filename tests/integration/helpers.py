"""What the integration tests do to a Juju model, in a few readable verbs.

`Juju` wraps one model: python-libjuju for what it does well (watching
status, units, actions, relations) and the ``juju`` CLI for what only the
CLI does well (deploying a bundle exactly as an operator would, spaces,
storage listings, task messages). Commands run on units go through
``juju exec``; LXD is asked with ``lxc query``, which returns the REST API's
own JSON rather than a table.

The ``juju`` snap can only read files under the user's home directory, so
every file handed to the CLI (bundles, action parameters) is written to
``Juju.workdir``, which the fixtures place inside the checkout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import shlex
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from juju.controller import Controller
from juju.model import Model

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


@dataclass
class Juju:
    """One model on the current controller, and the verbs the tests use on it."""

    controller: Controller
    model: Model
    name: str
    workdir: Path

    @classmethod
    async def create(cls, name: str, workdir: Path) -> Juju:
        """Add a fresh model called ``name`` on the current controller."""
        controller = Controller()
        await controller.connect()
        model = await controller.add_model(name, config=dict(MODEL_CONFIG))
        workdir.mkdir(parents=True, exist_ok=True)
        return cls(controller, model, name, workdir)

    async def close(self, *, keep: bool, failed: bool) -> None:
        """Record what happened when a step failed, then destroy the model (unless kept)."""
        if failed:
            await self.save_diagnostics()
        await self.model.disconnect()
        try:
            if not keep:
                await self.controller.destroy_models(
                    self.name, destroy_storage=True, force=True, max_wait=600
                )
        finally:
            await self.controller.disconnect()

    async def save_diagnostics(self) -> None:
        """Status and debug log in the workdir, which CI keeps as an artifact."""
        for filename, args in (
            ("status.yaml", ["status", "--format=yaml", "--relations", "--storage"]),
            ("debug-log.txt", ["debug-log", "--replay", "--no-tail", "--level=DEBUG"]),
        ):
            try:
                output = await self.cli(*args, timeout=300)
            except (CommandError, asyncio.TimeoutError) as e:
                output = f"could not collect: {e}"
            (self.workdir / f"{self.name}-{filename}").write_text(output)

    # --- the juju CLI --------------------------------------------------------

    async def cli(self, *args: str, timeout: float = 600) -> str:
        """Run ``juju ARGS -m MODEL``; its stdout.

        Raises:
            CommandError: a non-zero exit, with juju's message.
        """
        process = await asyncio.create_subprocess_exec(
            "juju",
            *args,
            "-m",
            self.name,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), timeout)
        except asyncio.TimeoutError:
            process.kill()
            raise
        if process.returncode != 0:
            raise CommandError(f"juju {' '.join(args)}: {err.decode().strip()}")
        return out.decode()

    def write(self, filename: str, data: Mapping[str, Any]) -> Path:
        """Write YAML where the juju snap can read it."""
        path = self.workdir / f"{self.name}-{filename}"
        path.write_text(yaml.safe_dump(dict(data), sort_keys=False))
        return path

    async def deploy_bundle(self, bundle: Mapping[str, Any], *, trust: bool = False) -> None:
        """``juju deploy`` a bundle, as an operator would."""
        path = self.write("bundle.yaml", bundle)
        args = ["deploy", str(path)] + (["--trust"] if trust else [])
        await self.cli(*args, timeout=DEPLOY_TIMEOUT)

    async def spaces(self) -> dict[str, list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
        """Space name -> its subnets."""
        data = json.loads(await self.cli("spaces", "--format=json"))
        found = {}
        for space in data.get("spaces", []):
            subnets = space.get("subnets") or {}
            cidrs = subnets.keys() if isinstance(subnets, dict) else (s["cidr"] for s in subnets)
            found[space["name"]] = [ipaddress.ip_network(cidr) for cidr in cidrs]
        return found

    async def ensure_space(self, name: str, cidr: str | None) -> None:
        """Make sure a space exists in this model (spaces are per model), with ``cidr`` in it."""
        if name in await self.spaces():
            return
        if not cidr:
            raise CommandError(f"space {name!r} does not exist and no subnet was given for it")
        try:
            await self.cli("reload-spaces")  # discover LXD networks created after bootstrap
        except CommandError as e:
            logger.info("reload-spaces: %s", e)
        await self.cli("add-space", name, cidr)

    async def space_bindings(self, *endpoints: str) -> dict[str, str]:
        """Bindings asked for by ``LXD_TEST_<ENDPOINT>_SPACE`` (and ``..._SUBNET``), created here.

        CI binds `https` to a space on a second LXD network, so the tests
        show that listeners follow the binding and not the first address.
        """
        bindings = {}
        for endpoint in endpoints:
            space = os.environ.get(f"LXD_TEST_{endpoint.upper()}_SPACE")
            if space:
                await self.ensure_space(
                    space, os.environ.get(f"LXD_TEST_{endpoint.upper()}_SUBNET")
                )
                bindings[endpoint] = space
        return bindings

    async def storage_location(self, unit: str, storage: str) -> str:
        """Where a unit's storage instance is attached (``/dev/loop3``)."""
        data = json.loads(await self.cli("storage", "--format=json"))
        for storage_id, info in (data.get("storage") or {}).items():
            if not storage_id.startswith(f"{storage}/"):
                continue
            attachment = ((info.get("attachments") or {}).get("units") or {}).get(unit)
            if attachment and attachment.get("location"):
                return str(attachment["location"])
        raise CommandError(f"no {storage} storage attached to {unit}: {data}")

    # --- units -----------------------------------------------------------------

    async def exec(self, unit: str, command: str, *, timeout: float = 300) -> str:
        """Run a shell command on a unit (in a hook context); its stdout.

        Raises:
            CommandError: a non-zero exit, with the command's stderr.
        """
        action = await self.model.units[unit].run(command, timeout=timeout, block=True)
        results = action.results
        code = int(results.get("return-code", results.get("Code", 0)))
        if code != 0:
            stderr = results.get("stderr", results.get("Stderr", ""))
            raise CommandError(f"{unit}: {command!r} exited {code}: {stderr.strip()}")
        return str(results.get("stdout", results.get("Stdout", "")))

    async def lxc(self, unit: str, *args: str) -> str:
        """Run the snap's ``lxc`` on a unit; its stdout."""
        quoted = " ".join(shlex.quote(arg) for arg in args)
        return await self.exec(unit, f"PATH=/snap/bin:$PATH lxc {quoted}")

    async def lxc_query(self, unit: str, path: str) -> Any:
        """Ask the unit's LXD for an API path (``/1.0/cluster/members?recursion=1``)."""
        return json.loads(await self.lxc(unit, "query", path))

    async def bind_address(self, unit: str, endpoint: str) -> str:
        """The address Juju gives the unit for an endpoint, in its bound space."""
        return (await self.exec(unit, f"network-get {endpoint} --bind-address")).strip()

    async def run_action(self, unit: str, action: str, **params: str) -> ActionOutcome:
        """Run an action and wait for it; a failure is returned, not raised."""
        started = await self.model.units[unit].run_action(action, **params)
        finished = await started.wait()
        message = ""
        if finished.status != "completed":
            task: dict[str, Any] = json.loads(
                await self.cli("show-task", started.entity_id, "--format=json")
            )
            if "status" not in task and len(task) == 1:  # keyed by task id
                task = next(iter(task.values()))
            message = str(task.get("message", ""))
        return ActionOutcome(finished.status, dict(finished.results), message)

    async def action_results(self, unit: str, action: str, **params: str) -> dict[str, Any]:
        """Run an action that must succeed; its results."""
        outcome = await self.run_action(unit, action, **params)
        if not outcome.ok:
            raise CommandError(f"{unit} {action} {outcome.status}: {outcome.message}")
        return outcome.results

    # --- waiting ---------------------------------------------------------------

    async def settle(
        self, *apps: str, status: str | None = "active", timeout: float = SETTLE_TIMEOUT, **kw: Any
    ) -> None:
        """Wait until the apps' units are idle (and in ``status``)."""
        await self.model.wait_for_idle(
            apps=list(apps), status=status, timeout=timeout, idle_period=30, **kw
        )

    async def wait_until(self, what: str, check: Any, *, timeout: float = SETTLE_TIMEOUT) -> None:
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

    async def leader(self, app: str) -> str:
        """The name of the application's leader unit."""
        for unit in self.model.applications[app].units:
            if await unit.is_leader_from_status():
                return str(unit.name)
        raise CommandError(f"{app} has no leader")

    def units(self, app: str) -> list[str]:
        """The application's unit names, sorted by number."""
        names = [unit.name for unit in self.model.applications[app].units]
        return sorted(names, key=lambda name: int(name.split("/")[1]))

    def status_message(self, unit: str) -> tuple[str, str]:
        """A unit's workload status and message."""
        entity = self.model.units[unit]
        return entity.workload_status, entity.workload_status_message


# --- bundles and certificates ----------------------------------------------------


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
