#!/usr/bin/env -S python3 -I -S
"""Every Juju hook tool at once, for the unit-agent stand-in (tests/harness/unit_agent.py).

The stand-in puts a directory on the hook's PATH where `relation-get`,
`secret-add`, `status-set`... are symlinks to this file. Each call sends
its tool name (how it was invoked), arguments and, for `--file -`, its
standard input over the stand-in's Unix socket, and prints what comes back:
Juju's hook tools answer from the controller's model, these answer from the
Juju simulator's. Standard library only, no site packages (`-I -S`): it
starts in a few milliseconds and cannot be broken by the charm's venv.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path


def call(tool: str, args: list[str], stdin: str | None) -> tuple[int, str, str]:
    """Ask the stand-in; returns (exit code, stdout, stderr)."""
    request = {
        "token": os.environ.get("UNIT_AGENT_TOKEN", ""),
        "tool": tool,
        "args": args,
        "stdin": stdin,
    }
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(os.environ["UNIT_AGENT_SOCKET"])
        conn.sendall(json.dumps(request).encode() + b"\n")
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    return int(reply["code"]), str(reply["stdout"]), str(reply["stderr"])


def main() -> int:
    """Run as the tool this file was invoked as."""
    tool = Path(sys.argv[0]).name
    args = sys.argv[1:]
    stdin = sys.stdin.read() if "-" in args and "--file" in args else None
    code, out, err = call(tool, args, stdin)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
