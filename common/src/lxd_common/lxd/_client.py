"""A connection to one LXD daemon, local (Unix socket) or remote (HTTPS).

`LxdClient` is the entry point of this package: it owns the pylxd client and
hands out the trust store and cluster views that share its connection.
Every failure surfaces as an `lxd_common.errors.LxdError` subclass.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import quote

import pylxd
import requests
import tenacity
from pylxd.client import get_session_for_url
from urllib3.util.retry import Retry

from ..certs import CertificatePair, write_certificate, write_private_key
from ..endpoints import normalise_endpoint
from ..errors import (
    LxdApiError,
    LxdError,
    LxdNotTrustedError,
    LxdServerCertificateError,
    LxdUnreachableError,
)
from ._api import check, translate_errors
from ._cluster import Cluster
from ._preseed import dump_preseed, join_preseed, parse_preseed
from ._socket import find_socket
from ._storage import StoragePools
from ._trust import TrustStore

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: Where ``lxd`` (for ``lxd init``) may live: the snap first, then Debian's.
LXD_BINARY_PATH = "/snap/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_TIMEOUT = 30.0
PRESEED_TIMEOUT = 300.0


@dataclass(frozen=True)
class ExistingSetup:
    """What someone already set up in a daemon (see `LxdClient.existing_setup`).

    Attributes:
        storage_pools: every storage pool.
        networks: the networks LXD manages (not the host's own interfaces).
        profiles: profiles that have devices.
        cluster_member: this daemon's member name when clustered, else "".
    """

    storage_pools: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    cluster_member: str = ""

    @property
    def initialised(self) -> bool:
        """Whether anything is there: a daemon nobody initialised has none of it."""
        return bool(self.storage_pools or self.networks or self.profiles or self.cluster_member)

    def describe(self) -> str:
        """For logs and statuses, e.g. "storage pools default; networks lxdbr0"."""
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("storage pools", self.storage_pools),
                ("networks", self.networks),
                ("profiles with devices", self.profiles),
            )
            if names
        ]
        if self.cluster_member:
            parts.append(f"cluster member {self.cluster_member}")
        return "; ".join(parts) or "nothing"


class LxdClient:
    """One daemon, with the trust store, cluster and storage pool operations on it."""

    def __init__(
        self,
        api: pylxd.Client,
        *,
        socket: Path | None = None,
        endpoint: str | None = None,
        private_dir: tempfile.TemporaryDirectory[str] | None = None,
    ) -> None:
        self._api = api
        self.socket = socket
        self.endpoint = endpoint
        self._private_dir = private_dir
        self.trust = TrustStore(api)
        self.cluster = Cluster(api)
        self.storage = StoragePools(api)

    # --- connecting --------------------------------------------------------

    @classmethod
    def local(
        cls,
        socket: Path | None = None,
        *,
        wait: float = 0.0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> LxdClient:
        """Connect over the local Unix socket (found like Juju finds it).

        Args:
            socket: the socket to use; found with `find_socket` when None.
            wait: seconds to keep retrying while the daemon is starting.
            timeout: seconds to wait for any one API answer.

        Raises:
            LxdNotFoundError: no socket exists.
            LxdUnreachableError: the daemon did not answer within ``wait``.
        """
        path = socket or find_socket()

        def connect() -> pylxd.Client:
            if not path.exists():
                raise LxdUnreachableError(f"the LXD socket {path} does not exist")
            url = f"http+unix://{quote(str(path), safe='')}"  # the URL pylxd makes of a path
            session = _retry_dropped_reads(get_session_for_url(url), url)
            with translate_errors(f"connecting to {path}"):
                return pylxd.Client(endpoint=str(path), timeout=timeout, session=session)

        return cls(_retrying(connect, wait), socket=path)

    @classmethod
    def remote(
        cls,
        endpoint: str,
        client_cert: CertificatePair,
        server_cert: str | None = None,
        *,
        wait: float = 0.0,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> LxdClient:
        """Connect over HTTPS, authenticating with a client certificate.

        Args:
            endpoint: any form `normalise_endpoint` accepts (``10.0.0.1``...).
            client_cert: our certificate and key; LXD trusts or rejects it.
            server_cert: the server's PEM certificate, pinned by fingerprint
                (LXD servers are self-signed); None verifies with system CAs.
            wait: seconds to keep retrying while the daemon is unreachable.
            timeout: seconds to wait for any one API answer.

        pylxd (through requests) needs files for certificates, so they are
        written to a private directory (0700, key 0600) removed by `close`.
        """
        url = normalise_endpoint(endpoint)
        private = tempfile.TemporaryDirectory(prefix="lxd-client-")
        try:
            directory = Path(private.name)
            directory.chmod(0o700)
            cert_path, key_path = directory / "client.crt", directory / "client.key"
            write_certificate(cert_path, client_cert.certificate)
            write_private_key(key_path, client_cert.private_key)
            verify: str | bool = True
            if server_cert is not None:
                server_path = directory / "server.crt"
                write_certificate(server_path, server_cert)
                verify = str(server_path)

            cert = (str(cert_path), str(key_path))
            session = _retry_dropped_reads(get_session_for_url(url, verify=verify, cert=cert), url)
            # requests lets REQUESTS_CA_BUNDLE (and friends) from the environment
            # override a session's `verify`, which would silently replace the pinned
            # server certificate with the system CAs: never take TLS settings from there.
            session.trust_env = False

            def connect() -> pylxd.Client:
                with translate_errors(f"connecting to {url}"):
                    return pylxd.Client(endpoint=url, cert=cert, timeout=timeout, session=session)

            api = _retrying(connect, wait)
        except BaseException:
            private.cleanup()
            raise
        return cls(api, endpoint=url, private_dir=private)

    def close(self) -> None:
        """Forget the connection and delete any certificate files written for it."""
        self._api.api.session.close()
        if self._private_dir is not None:
            self._private_dir.cleanup()
            self._private_dir = None

    def __enter__(self) -> LxdClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait until the daemon answers; returns its server info.

        Raises:
            LxdUnreachableError: still no answer after ``timeout`` seconds.
        """
        return _retrying(self.server_info, timeout)

    # --- server ------------------------------------------------------------

    @property
    def pylxd(self) -> pylxd.Client:
        """The underlying pylxd client, for what this package does not wrap."""
        return self._api

    def server_info(self) -> dict[str, Any]:
        """``GET /1.0``: environment, auth state, config (one API call)."""
        with translate_errors("reading server information"):
            response = self._api.api.get()
        info: dict[str, Any] = check(response, "reading server information")["metadata"]
        return info

    @property
    def trusted(self) -> bool:
        """True when the daemon trusts this client."""
        return self.server_info().get("auth") == "trusted"

    def require_trusted(self) -> None:
        """Raise `LxdNotTrustedError` unless the daemon trusts this client."""
        info = self.server_info()
        if info.get("auth") != "trusted":
            where = self.endpoint or str(self.socket)
            raise LxdNotTrustedError(
                f"LXD at {where} does not trust this client (auth: {info.get('auth')}); "
                "add the client certificate to its trust store"
            )

    @property
    def info_at_connect(self) -> dict[str, Any]:
        """The ``GET /1.0`` answer pylxd read to connect (a copy; no request).

        Every connection costs that request (pylxd checks that the daemon
        answers and keeps what it said, as `pylxd.Client.host_info`). It is
        the server as it was then: a caller that knows nothing changed the
        server since can use it instead of `server_info` and save a request.
        """
        return copy.deepcopy(dict(self._api.host_info))

    @property
    def member_name_at_connect(self) -> str:
        """This daemon's cluster member name as the connection found it ("" when not clustered).

        No request: read from `info_at_connect`. A member's name is fixed at
        bootstrap or join; LXD keeps it when the machine's hostname changes
        later, so this, not the hostname, is what finds the member then.
        """
        return _member_name(self._api.host_info)

    def server_config(self, info: Mapping[str, Any] | None = None) -> dict[str, str]:
        """The server's own configuration keys (``lxc config show``).

        Read from ``info`` when given (a ``GET /1.0`` answer the caller
        holds, such as `info_at_connect`), without a request; else asked.
        """
        held = self.server_info() if info is None else info
        return {str(k): str(v) for k, v in (held.get("config") or {}).items()}

    def set_server_config(
        self, values: Mapping[str, str | None], *, current: Mapping[str, str] | None = None
    ) -> list[str]:
        """Set (or, for None, unset) server keys; returns the keys that changed.

        Only differing keys are sent, in one PATCH, so re-running is a no-op
        and LXD either applies all of them or none. ``current`` is the server
        config to compare with, where the caller holds one that is still what
        LXD has (it saves the read); without it, the config is read first.
        """
        if current is None:
            current = self.server_config()
        patch: dict[str, str] = {}
        for key, value in values.items():
            if value is None or value == "":
                if key in current:
                    patch[key] = ""
            elif current.get(key) != value:
                patch[key] = value
        if patch:
            doing = f"setting server config {', '.join(sorted(patch))}"
            with translate_errors(doing):
                check(self._api.api.patch(json={"config": patch}), doing)
        return sorted(patch)

    # --- what the daemon holds ---------------------------------------------

    def instance_names(self) -> list[str]:
        """Every instance, in every project (one request)."""
        doing = "listing instances"
        with translate_errors(doing):
            response = self._api.api.instances.get(params={"all-projects": "true"})
        urls: list[str] = check(response, doing)["metadata"] or []
        return sorted(url.rstrip("/").rsplit("/", 1)[-1].split("?")[0] for url in urls)

    def storage_pool_volumes(self, pool: str) -> list[str]:
        """The volumes in storage pool ``pool``, as ``type/name`` (one request)."""
        doing = f"listing the volumes of storage pool {pool!r}"
        with translate_errors(doing):
            response = self._api.api.storage_pools[pool].volumes.get()
        urls: list[str] = check(response, doing)["metadata"] or []
        return sorted("/".join(url.split("?")[0].rstrip("/").split("/")[-2:]) for url in urls)

    def delete_storage_pool(self, pool: str) -> None:
        """Delete storage pool ``pool`` (LXD refuses while anything uses it)."""
        doing = f"deleting storage pool {pool!r}"
        with translate_errors(doing):
            check(self._api.api.storage_pools[pool].delete(), doing)

    def managed_networks(self) -> dict[str, dict[str, str]]:
        """Each managed network's config, by name (one request; cluster-wide in a cluster)."""
        doing = "listing networks"
        with translate_errors(doing):
            response = self._api.api.networks.get(params={"recursion": "1"})
        listed: list[dict[str, Any]] = check(response, doing)["metadata"] or []
        return {
            str(n["name"]): {str(k): str(v) for k, v in (n.get("config") or {}).items()}
            for n in listed
            if n.get("managed")
        }

    def existing_setup(self, info: Mapping[str, Any] | None = None) -> ExistingSetup:
        """What a first initialisation, by anyone, leaves in this daemon (three requests).

        Storage pools, managed networks, profiles with devices and cluster
        membership: a daemon nobody initialised has none of them (its
        `default` profile has no devices), so any of them means someone did.
        No single request answers for more than one of the first three (a
        preseed can make any of them alone), so each is a listing; the
        membership is in ``info`` when given (a ``GET /1.0`` answer the caller
        holds from after anything could last have changed it, such as
        `info_at_connect` right after connecting), else asked for
        (``GET /1.0/cluster``, a fourth request).
        """
        lists: dict[str, list[dict[str, Any]]] = {}
        for collection in ("storage_pools", "networks", "profiles"):
            doing = f"listing {collection.replace('_', ' ')}"
            with translate_errors(doing):
                response = getattr(self._api.api, collection).get(params={"recursion": "1"})
            lists[collection] = check(response, doing)["metadata"] or []
        return ExistingSetup(
            storage_pools=tuple(sorted(str(p["name"]) for p in lists["storage_pools"])),
            networks=tuple(sorted(str(n["name"]) for n in lists["networks"] if n.get("managed"))),
            profiles=tuple(sorted(str(p["name"]) for p in lists["profiles"] if p.get("devices"))),
            cluster_member=self.cluster.server_name if info is None else _member_name(info),
        )

    # --- initialisation ----------------------------------------------------

    def apply_preseed(
        self, preseed: str | Mapping[str, Any], *, timeout: float = PRESEED_TIMEOUT
    ) -> None:
        """Apply a preseed with ``lxd init --preseed`` against this daemon.

        The preseed is checked first (`PreseedError` names the problem);
        LXD then applies it as one unit with its own rollback. Only local
        daemons can be initialised this way. The preseed text is never
        logged: a join preseed carries a cluster token.

        Raises:
            PreseedError: the preseed is malformed.
            LxdError: this is a remote client, or ``lxd`` is not installed.
            LxdApiError: LXD refused the preseed; the message is LXD's.
            LxdUnreachableError: ``lxd init`` did not finish within ``timeout`` seconds.
        """
        data = parse_preseed(preseed)
        if self.socket is None:
            raise LxdError("a preseed can only be applied to a local LXD daemon")
        binary = shutil.which("lxd", path=LXD_BINARY_PATH)
        if binary is None:
            raise LxdError("the lxd command is not installed; cannot apply a preseed")
        env = dict(os.environ, LXD_DIR=str(self.socket.parent))
        logger.info("applying an LXD preseed with sections: %s", ", ".join(sorted(data)))
        try:
            subprocess.run(
                [binary, "init", "--preseed"],
                input=dump_preseed(data),
                env=env,
                capture_output=True,
                text=True,
                check=True,
                timeout=timeout,
            )
        except subprocess.CalledProcessError as e:
            reason = (e.stderr or e.stdout or "").strip().splitlines()
            raise LxdApiError(
                f"LXD refused the preseed: {reason[-1] if reason else f'exit code {e.returncode}'}"
            ) from None
        except subprocess.TimeoutExpired:
            raise LxdUnreachableError(
                f"lxd init did not finish within {timeout:.0f} seconds"
            ) from None

    def join_cluster(
        self,
        server_name: str,
        server_address: str,
        token: str,
        member_config: Sequence[Mapping[str, str]] = (),
        *,
        timeout: float = PRESEED_TIMEOUT,
    ) -> None:
        """Join an existing cluster as ``server_name``, reachable at ``server_address``.

        ``token`` comes from `Cluster.add_join_token` on an existing member;
        ``timeout`` bounds the whole ``lxd init``.
        """
        self.apply_preseed(
            join_preseed(server_name, server_address, token, member_config), timeout=timeout
        )


def _member_name(info: Mapping[str, Any]) -> str:
    """This daemon's cluster member name from its ``GET /1.0`` answer ("" when not clustered).

    LXD's `environment` says whether the daemon is clustered
    (`server_clustered`) and its `server_name`: the member name when it is
    (the name ``GET /1.0/cluster`` gives), the host name when it is not.
    """
    environment = info.get("environment") or {}
    if not environment.get("server_clustered"):
        return ""
    return str(environment.get("server_name") or "")


READ_RETRIES: Final = Retry(
    total=2, connect=2, read=2, allowed_methods=frozenset({"GET", "HEAD"}), backoff_factor=0.1
)
"""How urllib3 retries a request whose connection failed: twice, within half a second.

A connection that cannot be made never carried the request, so any method
is asked again; one that broke after the request went out (a keep-alive
connection the daemon or something in between dropped: "Connection reset
by peer", "Remote end closed connection") is asked again only for reads,
which change nothing. Without it, a hook that met one dropped connection
ended in a wait that only the next hook retries; a joiner whose peers have
nothing more to say gets no next hook until update-status.
"""


def _retry_dropped_reads(session: requests.Session, url: str) -> requests.Session:
    """``session``, its adapter for ``url`` retrying as `READ_RETRIES` says."""
    adapter = session.get_adapter(url)
    if isinstance(adapter, requests.adapters.HTTPAdapter):
        adapter.max_retries = READ_RETRIES
    return session


def _retrying(call: Callable[[], T], seconds: float) -> T:
    """Call until it stops raising `LxdUnreachableError`, for up to ``seconds``."""
    if seconds <= 0:
        return call()
    retryer = tenacity.Retrying(
        stop=tenacity.stop_after_delay(seconds),
        wait=tenacity.wait_exponential(multiplier=0.1, max=1.0),
        retry=tenacity.retry_if_exception(
            lambda e: (
                isinstance(e, LxdUnreachableError) and not isinstance(e, LxdServerCertificateError)
            )
        ),
        reraise=True,
    )
    return retryer(call)
