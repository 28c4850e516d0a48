"""TLS between scheduler, workers and client, with the campaign's own certificates.

A real LocalCluster of processes on 127.0.0.1 with TLS: a client holding the
campaign's certificate connects and runs a task; a plain-TCP client, a TLS
client without a certificate, and a client with another campaign's
certificate are refused by the scheduler.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
import time

import pytest
from distributed import Client
from distributed.security import Security

from activemat.campaign.config import ClusterSection
from activemat.dispatch.clusters import connect
from activemat.dispatch.security import ensure_certificates, security_for, tls_dir_for
from activemat.errors import InputError
from tests.faults import another_user


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A TLS LocalCluster for a campaign whose store is <tmp>/c.h5; yields (client, certificate dir, tmp)."""
    root = tmp_path_factory.mktemp("tls")
    with connect(ClusterSection(workers=1, tls=True, dashboard=False), log=lambda _: None,
                 store=root / "c.h5") as client:
        yield client, tls_dir_for(root / "c.h5"), root


def _host_port(address: str) -> tuple[str, int]:
    host, port = address.split("://")[1].rsplit(":", 1)
    return host, int(port)


def _scheduler_logged(caplog, text: str, wait: float = 5.0) -> bool:
    """The scheduler (in this process) logs each refused handshake; it may land a moment later."""
    deadline = time.monotonic() + wait
    while text not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.05)
    return text in caplog.text


def test_certificates_are_private_files_beside_the_store(tls_cluster):
    _, certs, root = tls_cluster
    assert certs == root / "c.h5.tls"
    assert stat.S_IMODE(certs.stat().st_mode) == 0o700
    for role in ("scheduler", "worker", "client"):
        assert stat.S_IMODE((certs / f"{role}.key").stat().st_mode) == 0o600
        assert (certs / f"{role}.pem").is_file()
    assert not list(certs.glob("ca*.key")), "the CA key is never written"


def test_client_with_the_campaign_certificate_connects(tls_cluster):
    client, certs, _ = tls_cluster
    assert client.scheduler.address.startswith("tls://127.0.0.1:")
    assert all(addr.startswith("tls://127.0.0.1:") for addr in client.scheduler_info()["workers"])
    with Client(client.scheduler.address, security=security_for(certs, create=False), timeout=10) as other:
        assert other.submit(sum, [40, 2]).result() == 42


def test_plain_tcp_client_is_refused(tls_cluster):
    client, _, _ = tls_cluster
    host, port = _host_port(client.scheduler.address)
    with pytest.raises(OSError):  # distributed's CommClosedError: connection reset by the TLS listener
        Client(f"tcp://{host}:{port}", timeout=5)


def test_tls_client_without_certificate_is_refused(tls_cluster, caplog):
    """Even a client that trusts the campaign CA gets nothing without a certificate of its own."""
    client, certs, _ = tls_cluster
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.check_hostname = False
    with socket.create_connection(_host_port(client.scheduler.address), timeout=5) as raw:
        with ctx.wrap_socket(raw) as conn:
            # TLS 1.3: the scheduler's refusal arrives as an alert or a closed connection
            with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED|certificate required|EOF occurred"):
                conn.sendall(b"hello")
                conn.recv(16)
    assert _scheduler_logged(caplog, "peer did not return a certificate")


def test_client_with_another_campaigns_certificate_is_refused(tls_cluster, tmp_path, caplog):
    client, certs, _ = tls_cluster
    foreign = ensure_certificates(tmp_path / "other.h5.tls")
    # trusts the right CA (so it accepts the scheduler) but presents a certificate it did not sign
    security = Security(require_encryption=True, tls_ca_file=str(certs / "ca.pem"),
                        tls_client_cert=str(foreign / "client.pem"), tls_client_key=str(foreign / "client.key"))
    with pytest.raises(OSError, match="UNKNOWN_CA|unknown ca|EOF occurred"):
        Client(client.scheduler.address, security=security, timeout=5)
    assert _scheduler_logged(caplog, "certificate verify failed")


def test_address_kind_joins_a_running_tls_scheduler(tls_cluster, tmp_path):
    client, certs, _ = tls_cluster
    section = ClusterSection(kind="address", address=client.scheduler.address, tls_dir=str(certs))
    assert section.use_tls
    lines = []
    with connect(section, log=lines.append) as other:
        assert other.submit(sum, [1, 2]).result() == 3
    assert lines == [f"scheduler: {client.scheduler.address} (1 workers)"]
    empty = ClusterSection(kind="address", address=client.scheduler.address, tls_dir=str(tmp_path / "none"))
    with pytest.raises(InputError, match="no usable TLS certificates.*python -m activemat.dispatch.security"):
        with connect(empty, log=lines.append):
            pass


def test_certificates_are_reused_and_replaced_when_broken(tmp_path):
    d = ensure_certificates(tmp_path / "s.h5.tls")
    first = (d / "ca.pem").read_bytes()
    assert ensure_certificates(d).joinpath("ca.pem").read_bytes() == first  # workers started earlier keep working
    (d / "worker.pem").write_bytes((ensure_certificates(tmp_path / "x.tls") / "worker.pem").read_bytes())
    assert ensure_certificates(d).joinpath("ca.pem").read_bytes() != first  # mismatched set: a fresh CA
    os.chmod(d, 0o755)
    assert stat.S_IMODE(ensure_certificates(d).stat().st_mode) == 0o700


@pytest.fixture(scope="module")
def default_cluster(tmp_path_factory):
    """A local cluster as a campaign starts it by default (no tls key): yields (client, working directory)."""
    root = tmp_path_factory.mktemp("default")
    here = os.getcwd()
    os.chdir(root)
    try:
        with connect(ClusterSection(workers=1, dashboard=False), log=lambda _: None, store=root / "c.h5") as client:
            yield client, root
    finally:
        os.chdir(here)


def test_local_cluster_is_tls_by_default_with_a_certificate_for_the_run(default_cluster):
    client, root = default_cluster
    section = ClusterSection(workers=1, dashboard=False)
    assert section.use_tls and ClusterSection(kind="slurm").use_tls and not ClusterSection(tls=False).use_tls
    assert client.scheduler.address.startswith("tls://127.0.0.1:")
    assert all(addr.startswith("tls://127.0.0.1:") for addr in client.scheduler_info()["workers"])
    assert client.submit(sum, [40, 2]).result() == 42  # the campaign's own client works
    assert client.run(os.getuid) == {w: os.getuid() for w in client.scheduler_info()["workers"]}
    # the only file the run leaves beside its store is Dask's own log (dispatch/logs.py), and no key is in it
    left = list(root.iterdir())
    assert [p.name for p in left] == ["c.h5.dask.log"], "the run's certificate never touches the disk"
    assert "PRIVATE KEY" not in left[0].read_text() and "CERTIFICATE" not in left[0].read_text()


@pytest.mark.skipif(bool(another_user.unavailable()), reason=str(another_user.unavailable()))
def test_another_local_user_cannot_connect_to_the_default_local_cluster(default_cluster):
    """The probe of issue 29: a process of uid 65534 connected and ran client.run(os.getuid) on every worker.
    Now every connection it tries, to the scheduler and to each worker, fails during the handshake."""
    client, root = default_cluster
    workers = list(client.scheduler_info()["workers"])
    out = another_user.probe([client.scheduler.address], workers)
    print(out)
    assert out.pop("uid") == another_user.UID and "ran_as" not in out
    assert len(out) == 3 + 2 * len(workers)
    assert all(result.startswith("refused") for result in out.values()), out
    assert client.submit(sum, [1, 2]).result() == 3  # and the campaign's client still works


def test_plain_tcp_only_when_asked(tmp_path):
    with connect(ClusterSection(workers=1, dashboard=False, tls=False), log=lambda _: None) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
