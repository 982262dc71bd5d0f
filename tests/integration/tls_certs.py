"""Throwaway certificates for the TLS tests, made at run time with the openssl CLI (no key is
ever committed). A TestCa is a directory holding a self-signed CA and what `openssl ca` needs to
issue, revoke and publish a CRL; every key is ECDSA P-256."""
import datetime
import os
import subprocess

OPENSSL = "/usr/bin/openssl"

_CA_CONFIG = """\
[ca]
default_ca = dolmen_test_ca
[dolmen_test_ca]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
"""


def _run(*args):
    proc = subprocess.run([OPENSSL] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (" ".join(args), proc.stderr.decode()))


def _asn1_time(when):
    return when.strftime("%Y%m%d%H%M%SZ")


class TestCa:
    def __init__(self, directory, name):
        self.dir = directory
        os.makedirs(os.path.join(directory, "issued"), exist_ok=True)
        with open(os.path.join(directory, "index.txt"), "w"):
            pass
        with open(os.path.join(directory, "serial"), "w") as f:
            f.write("1000\n")
        with open(os.path.join(directory, "crlnumber"), "w") as f:
            f.write("1000\n")
        self.config = os.path.join(directory, "ca.cnf")
        with open(self.config, "w") as f:
            f.write(_CA_CONFIG.format(dir=directory))
        self.cert = os.path.join(directory, "ca.pem")
        self.key = os.path.join(directory, "ca.key")
        _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + name)

    def issue(self, name, cn, ips=(), dns=(), days_from=-1, days_to=2, client=True):
        """Issues a certificate; returns (cert_path, key_path). Validity is [now+days_from,
        now+days_to] days: a negative days_to makes an expired certificate."""
        cert = os.path.join(self.dir, name + ".pem")
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        _run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        sans = ["IP:" + ip for ip in ips] + ["DNS:" + d for d in dns]
        with open(ext, "w") as f:
            if sans:
                f.write("subjectAltName=%s\n" % ",".join(sans))
            f.write("extendedKeyUsage=serverAuth%s\n" % (",clientAuth" if client else ""))
        now = datetime.datetime.now(datetime.timezone.utc)
        _run("ca", "-batch", "-config", self.config, "-in", csr, "-out", cert, "-notext",
             "-extfile", ext, "-startdate", _asn1_time(now + datetime.timedelta(days=days_from)),
             "-enddate", _asn1_time(now + datetime.timedelta(days=days_to)))
        return cert, key

    def revoke(self, cert):
        _run("ca", "-batch", "-config", self.config, "-revoke", cert)

    def write_crl(self, path):
        _run("ca", "-batch", "-config", self.config, "-gencrl", "-out", path)
        return path
