"""TLS for a campaign's Dask cluster: a private CA and one certificate per role, on disk.

A Dask scheduler runs pickled code sent by whoever can connect to it, so on a
cluster scheduler, workers and client talk over mutually authenticated TLS.
Each campaign gets its own certificate authority in a private directory next
to its store (``<store>.tls/``, mode 0700, keys 0600). The files live on disk,
not in memory, because workers started by SLURM on other nodes must read
them (the directory is on the shared filesystem with the store).

The CA's private key is used once, to sign the role certificates, and never
written: nobody can mint another certificate for the campaign. Deleting the
directory revokes everything; the next run makes a fresh CA.

Files: ``ca.pem``, and ``<role>.pem`` + ``<role>.key`` for the roles
``scheduler``, ``worker`` and ``client``.

>>> import tempfile, os
>>> d = ensure_certificates(os.path.join(tempfile.mkdtemp(), "x.h5.tls"))
>>> oct(os.stat(d).st_mode & 0o777), sorted(p.name for p in d.iterdir())[:3]
('0o700', ['ca.pem', 'client.key', 'client.pem'])
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
from pathlib import Path

from activemat.errors import InputError

ROLES = ("scheduler", "worker", "client")
VALID_DAYS = 365
RENEW_BEFORE = datetime.timedelta(days=1)


def tls_dir_for(store: str | os.PathLike) -> Path:
    """The campaign's certificate directory: ``<store>.tls`` beside the store."""
    return Path(f"{Path(store).resolve()}.tls")


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.getuid():
        raise InputError(f"{path}: certificate directory belongs to uid {st.st_uid}, not you; "
                         "remove it or set [cluster] tls_dir to a directory of your own")
    if st.st_mode & 0o077:
        path.chmod(0o700)
    return path


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)  # a crashed run's leftover (or a planted link: removing a name changes no file)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)  # never through a link
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _usable(directory: Path) -> bool:
    """All files there, each role certificate signed by ca.pem and valid for a while longer."""
    from cryptography import x509

    files = [directory / "ca.pem"] + [directory / f"{r}.{ext}" for r in ROLES for ext in ("pem", "key")]
    if not all(f.is_file() for f in files):
        return False
    try:
        ca = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
        soon = datetime.datetime.now(datetime.timezone.utc) + RENEW_BEFORE
        for role in ROLES:
            cert = x509.load_pem_x509_certificate((directory / f"{role}.pem").read_bytes())
            cert.verify_directly_issued_by(ca)
            if cert.not_valid_after_utc < soon:
                return False
        return ca.not_valid_after_utc >= soon
    except (ValueError, TypeError):  # unreadable or signed by another CA: make a fresh set
        return False


def _name(common_name: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "activemat"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _create(directory: Path, days: int) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=5)  # clock skew
    until = now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"activemat campaign CA {directory.name}")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    leaves = {}
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(_name(f"activemat-{role}")).issuer_name(ca_name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now).not_valid_after(until)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"activemat-{role}")]), critical=False)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        leaves[role] = (cert.public_bytes(pem), key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                                    serialization.NoEncryption()))
    # Keys first, ca.pem last: a set is complete only once ca.pem matches it (see _usable).
    for role, (cert_pem, key_pem) in leaves.items():
        _write(directory / f"{role}.key", key_pem, 0o600)
        _write(directory / f"{role}.pem", cert_pem, 0o644)
    _write(directory / "ca.pem", ca.public_bytes(pem), 0o644)


def ensure_certificates(directory: str | os.PathLike, *, days: int = VALID_DAYS) -> Path:
    """Return a private directory holding a usable CA and role certificates, creating them if needed.

    Existing certificates are reused while valid (so workers and a scheduler
    started earlier with them keep working); missing, mismatched or nearly
    expired ones are replaced by a fresh set.
    """
    directory = _private_dir(Path(directory).resolve())
    if not _usable(directory):
        _create(directory, days)
    return directory


def security_for(directory: str | os.PathLike, *, create: bool = True):
    """A ``distributed.Security`` using the certificate files in ``directory`` (TLS required)."""
    from distributed.security import Security

    directory = Path(directory).resolve()
    if create:
        ensure_certificates(directory)
    elif not _usable(directory):
        raise InputError(f"{directory}: no usable TLS certificates; create them with "
                         f"`python -m activemat.dispatch.security {directory}` and start the scheduler with them")
    return Security(require_encryption=True, **certificate_files(directory))


def certificate_files(directory: str | os.PathLike) -> dict[str, str]:
    """``distributed.Security`` keywords naming the certificate files in ``directory`` (which need not exist yet).

    >>> certificate_files("/c")["tls_worker_key"]
    '/c/worker.key'
    """
    d = Path(directory)
    files = {"tls_ca_file": str(d / "ca.pem")}
    for role in ROLES:
        files[f"tls_{role}_cert"] = str(d / f"{role}.pem")
        files[f"tls_{role}_key"] = str(d / f"{role}.key")
    return files


def command_line_flags(directory: str | os.PathLike, role: str) -> list[str]:
    """``dask scheduler`` / ``dask worker`` TLS flags for a role's files in ``directory``.

    >>> command_line_flags("/c", "worker")
    ['--tls-ca-file', '/c/ca.pem', '--tls-cert', '/c/worker.pem', '--tls-key', '/c/worker.key']
    """
    d = Path(directory)
    return ["--tls-ca-file", str(d / "ca.pem"), "--tls-cert", str(d / f"{role}.pem"),
            "--tls-key", str(d / f"{role}.key")]


def main(argv: list[str] | None = None) -> int:
    """``python -m activemat.dispatch.security DIR``: create certificates, print the flags to use them."""
    parser = argparse.ArgumentParser(prog="python -m activemat.dispatch.security", description=main.__doc__)
    parser.add_argument("directory", help="certificate directory, e.g. runs/demo.h5.tls")
    args = parser.parse_args(argv)
    directory = ensure_certificates(args.directory)
    print(f"certificates in {directory}")
    print("scheduler: dask scheduler --protocol tls --host 127.0.0.1 "
          + shlex.join(command_line_flags(directory, "scheduler")))
    print("worker:    dask worker tls://HOST:PORT --nthreads 1 " + shlex.join(command_line_flags(directory, "worker")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
