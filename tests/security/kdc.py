"""An MIT Kerberos KDC for one test session (Debian's krb5-kdc, started by the test): a realm in
a temporary directory, the broker's service principal, a client principal and another service's
principal, each with a keytab, and the krb5.conf clients and the broker use (KRB5_CONFIG)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import free_port, wait_for

REALM = "PYK.TEST"
SERVICE = "kafka"


@dataclass
class Kdc:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        return {"KRB5_CONFIG": str(self.root / "krb5.conf"), "KRB5_KDC_PROFILE": str(self.root / "kdc.conf")}

    def keytab(self, name: str) -> str:
        return str(self.root / f"{name}.keytab")

    @classmethod
    def available(cls) -> bool:
        return all(shutil.which(tool, path="/usr/sbin:/usr/bin") for tool in ("krb5kdc", "kdb5_util", "kadmin.local"))

    @classmethod
    def start(cls, root: Path) -> Kdc:
        root.mkdir(parents=True, exist_ok=True)
        port = free_port()
        (root / "krb5.conf").write_text(f"""[libdefaults]
  default_realm = {REALM}
  dns_lookup_kdc = false
  dns_lookup_realm = false
  rdns = false
  udp_preference_limit = 1
  default_ccache_name = FILE:{root}/ccache
[realms]
  {REALM} = {{
    kdc = 127.0.0.1:{port}
  }}
[domain_realm]
  localhost = {REALM}
""")
        (root / "kdc.conf").write_text(f"""[kdcdefaults]
  kdc_ports = {port}
  kdc_tcp_ports = {port}
[realms]
  {REALM} = {{
    database_name = {root}/principal
    key_stash_file = {root}/stash
    acl_file = {root}/kadm5.acl
    max_life = 1h
  }}
[logging]
  kdc = FILE:{root}/kdc.log
""")
        env = dict(os.environ, KRB5_CONFIG=str(root / "krb5.conf"), KRB5_KDC_PROFILE=str(root / "kdc.conf"))

        def run(*argv: str) -> None:
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)

        run("/usr/sbin/kdb5_util", "create", "-s", "-r", REALM, "-P", "master-secret")
        # other/localhost: a service the broker is not, for a ticket it must refuse.
        for principal, keytab in ((f"{SERVICE}/localhost", "broker"), ("alice", "alice"), ("other/localhost", "other")):
            run("/usr/sbin/kadmin.local", "-r", REALM, "-q", f"addprinc -randkey {principal}")
            run("/usr/sbin/kadmin.local", "-r", REALM, "-q", f"ktadd -k {root}/{keytab}.keytab {principal}")
        process = subprocess.Popen(["/usr/sbin/krb5kdc", "-n", "-r", REALM], env=env,
                                   stdout=subprocess.DEVNULL, stderr=open(root / "krb5kdc.err", "wb"))
        kdc = cls(root, port, process)
        wait_for(lambda: "commencing operation" in (root / "kdc.log").read_text() if (root / "kdc.log").exists()
                 else False, timeout=30, what="the KDC to start")
        return kdc

    def kinit(self, principal: str, keytab: str) -> None:
        subprocess.run(["kinit", "-k", "-t", keytab, principal], env=dict(os.environ, **self.env), check=True,
                       capture_output=True, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
