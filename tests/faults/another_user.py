"""Another local user (uid 65534) against a campaign's Dask listeners: the probe of issue 29, item 2.

Run as root through ``setpriv``, the probe tries everything a process without the campaign's certificate can
try: a plain-TCP Dask client, TLS without a client certificate, and a client with a certificate of its own
against the scheduler; Dask's own handshake and bare TLS against each worker. Shared by the TLS tests and the
chaos benchmark (its ``another_user`` fault).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import psutil

UID = 65534  # nobody

# Prints one JSON object: probe -> "refused: <exception>" or "connected" (and "ran_as" if code ran remotely).
PROBE = r"""
import asyncio, json, os, socket, ssl, sys
from concurrent.futures import ThreadPoolExecutor, wait
from distributed import Client
from distributed.comm import connect
from distributed.security import Security

schedulers, workers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {"uid": os.getuid()}

def attempt(name, fn, *args):
    try:
        fn(*args)
        out[name] = "connected"
    except Exception as exc:
        out[name] = f"refused: {type(exc).__name__}"

def client(address, security=None):
    with Client(address, security=security, timeout=5) as c:
        out["ran_as"] = c.run(os.getuid)

def raw_tls(address):  # TLS without a client certificate, trusting anything
    host, port = address.split("://")[1].rsplit(":", 1)
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((host, int(port)), timeout=5) as raw, ctx.wrap_socket(raw) as conn:
        conn.sendall(b"hello")
        if not conn.recv(16):
            raise ConnectionResetError("closed")

def comm(address):  # distributed's own handshake, plain TCP
    async def go():  # bounded: an HTTP listener (a worker's metrics server) never answers the handshake
        c = await asyncio.wait_for(connect(address, timeout=5), 10)
        await c.close()
    asyncio.run(go())

probes = []
for i, s in enumerate(schedulers):
    probes += [(f"scheduler{i}_plain_tcp", client, s.replace("tls://", "tcp://")),
               (f"scheduler{i}_tls_without_certificate", raw_tls, s),
               (f"scheduler{i}_own_certificate", client, s, Security.temporary())]
for i, w in enumerate(workers):
    probes += [(f"worker{i}_plain_tcp", comm, w.replace("tls://", "tcp://")),
               (f"worker{i}_tls_without_certificate", raw_tls, w)]
pool = ThreadPoolExecutor(len(probes))  # all at once: each may wait out its 5 s timeout
futures = {pool.submit(attempt, *p): p[0] for p in probes}
for hung in wait(futures, timeout=30).not_done:  # a listener that accepts and never answers (a worker's
    out.setdefault(futures[hung], "refused: no answer in 30 s")  # HTTP server) let nobody in
print(json.dumps(out), flush=True)
os._exit(0)  # without joining the hung threads
"""


def unavailable() -> str | None:
    """Why the probe cannot run here, or None."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return "running a probe as another user needs root and setpriv"
    return None


def probe(schedulers: list[str], workers: list[str], timeout: float = 300) -> dict:
    """Run PROBE as uid 65534 against these addresses; its JSON result (raises if the probe itself failed)."""
    proc = subprocess.run(["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups", sys.executable, "-c",
                           PROBE, json.dumps(schedulers), json.dumps(workers)],
                          capture_output=True, text=True, timeout=timeout, cwd="/", env={"PATH": os.environ["PATH"]})
    if proc.returncode != 0:
        raise RuntimeError(f"the probe failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def breaches(result: dict) -> list[str]:
    """The probes that got in: none is the pass."""
    return [name for name, value in result.items() if name == "ran_as" or value == "connected"]


def listeners(pid: int) -> tuple[list[str], list[str]]:
    """(the process's own listening addresses, those of its descendants), as tls://host:port: a campaign
    driver's scheduler and its workers and nannies."""
    def listening(proc: psutil.Process) -> list[str]:
        try:
            conns = proc.net_connections(kind="tcp")
        except psutil.Error:
            return []
        return sorted(f"tls://{c.laddr.ip}:{c.laddr.port}" for c in conns if c.status == psutil.CONN_LISTEN)

    try:
        root = psutil.Process(pid)
        children = root.children(recursive=True)
    except psutil.Error:
        return [], []
    return listening(root), [a for child in children for a in listening(child)]
