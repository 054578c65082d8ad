"""The interfaces' package as PyPI will have it: a wheel that installs alone with ops.

``uv build`` builds the wheel and sdist from ``lxd-charms-interfaces/`` as the
release workflow does; the wheel goes into a fresh virtual environment with
nothing but ``ops`` (at constraints.txt's pin), and a probe imports both
interface modules there, with ``-I`` so nothing of this checkout leaks in,
and uses them: no ``lxd_common``, no ``cryptography``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from scripts.packing.projects import REPO, constraint_pins

PACKAGE = REPO / "lxd-charms-interfaces"
CERT = (PACKAGE / "tests" / "data" / "client.pem").read_text()
CERT_FP = "e3a9561200b6341fc1b19bb33c34e19f483db5f84a3f389ba63784a19879d7f0"  # openssl, captured

PROBE = """
import importlib.util, json, sys
from lxd_charms_interfaces import __version__, lxd, lxd_https
request = lxd_https.ClientRequest(sys.argv[1], projects=("ci",))
certs = lxd.RequirerData.from_pems([sys.argv[1]])
print(json.dumps({
    "version": __version__,
    "file": lxd.__file__,
    "request": request.to_databag(),
    "fingerprints": sorted(certs.fingerprints),
    "lxd_common": importlib.util.find_spec("lxd_common") is not None,
    "cryptography": importlib.util.find_spec("cryptography") is not None,
    "loaded": sorted(m.split(".")[0] for m in sys.modules),
}))
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    uv = shutil.which("uv")
    assert uv, "uv is missing: it is in the pack env's deps"
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([uv, "build", "--quiet", "--out-dir", str(out), str(PACKAGE)], check=True)
    return out


def test_the_wheel_holds_the_package_and_its_type_marker(dist: Path) -> None:
    (wheel,) = dist.glob("lxd_charms_interfaces-*-py3-none-any.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"lxd_charms_interfaces/{p.relative_to(PACKAGE / 'src' / 'lxd_charms_interfaces')}"
        for p in (PACKAGE / "src" / "lxd_charms_interfaces").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert expected <= names and "lxd_charms_interfaces/py.typed" in names
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    requires = [line for line in text.splitlines() if line.startswith("Requires-Dist:")]
    assert requires == ["Requires-Dist: ops"]
    (sdist,) = dist.glob("lxd_charms_interfaces-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = {Path(m).name for m in archive.getnames()}
    assert {"CHANGELOG.md", "README.md", "LICENSE", "pyproject.toml", "py.typed"} <= members


def test_the_wheel_installs_alone_with_ops_and_works(dist: Path, tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    ops_pin = f"ops=={constraint_pins()['ops']}"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), str(wheel), ops_pin],
        check=True,
    )
    result = subprocess.run(
        [str(python), "-I", "-c", PROBE, CERT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["file"]).resolve().is_relative_to(venv.resolve())
    assert (found["lxd_common"], found["cryptography"]) == (False, False)
    assert {"lxd_common", "cryptography", "pydantic"}.isdisjoint(found["loaded"])
    assert found["fingerprints"] == [CERT_FP]
    assert found["request"]["projects"] == "ci" and found["request"]["version"] == "1.0"
    installed = subprocess.run(
        [uv, "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    names = {line.split("==")[0].split(" @ ")[0].lower() for line in installed.split()}
    assert "lxd-charms-interfaces" in names and "ops" in names
    assert not names & {"lxd-charms-common", "cryptography", "pylxd"}
