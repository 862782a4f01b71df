"""Runs a command on another Linux kernel: Debian's, booted by QEMU with this machine's files.

Why: kernel TLS needs the kernel's `tls` module, and the kernel the tests run on may have none
(this machine's has not).  `ci/install.sh --test` unpacks Debian's kernel package into
`kernel_dir()`; virtme-ng boots it with the host's root file system shared read-only (writes land
in the guest's overlays) and runs one shell command there.  QEMU emulates the CPU (TCG): nested
KVM is not dependable on cloud machines (here it hangs before the kernel prints a line), and a
test of a few seconds' work does not need it.

The guest's output comes back on its serial console, mixed with the kernel's lines, so the
command's exit status is printed after a marker and read back from there.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

_RC_MARKER = "PYK-GUEST-EXIT="


def kernel_dir() -> Path:
    """Where ci/install.sh --test unpacks the kernel package (ci/common.sh's kernel_dir)."""
    return Path(os.environ.get("PYK_KERNEL_DIR", Path.home() / ".cache/pyk/kernel"))


@dataclass(frozen=True)
class Kernel:
    image: Path
    modules: Path  # lib/modules/<release>

    def module(self, name: str) -> Path:
        found = sorted(self.modules.glob(f"kernel/**/{name}.ko*"))
        if not found:
            raise FileNotFoundError(f"no module {name} under {self.modules}")
        return found[0]


def debian_kernel() -> Kernel:
    """The unpacked kernel; fails naming the install step when it is missing."""
    images = sorted(kernel_dir().glob("boot/vmlinuz-*"))
    if not images:
        raise FileNotFoundError(f"no kernel under {kernel_dir()}: run ci/install.sh --test")
    release = images[-1].name.removeprefix("vmlinuz-")
    return Kernel(images[-1], kernel_dir() / "lib/modules" / release)


@dataclass(frozen=True)
class GuestRun:
    returncode: int | None  # None: the command never finished (no marker in the output)
    output: str


def run_in_guest(command: str, cwd: Path, timeout: float, modules: tuple[str, ...] = (),
                 memory: str = "2G") -> GuestRun:
    """Boots the kernel, loads `modules` with insmod, runs the shell `command` in `cwd` with this
    process's environment, and powers off; raises subprocess.TimeoutExpired after `timeout`."""
    kernel = debian_kernel()
    loads = "".join(f"insmod {shlex.quote(str(kernel.module(m)))} && " for m in modules)
    path = shlex.quote(os.environ.get("PATH", "/usr/bin:/bin"))
    script = f"export PATH={path}; {loads}{command}; echo {_RC_MARKER}$?"
    argv = ["vng", "--run", str(kernel.image), "--disable-kvm", "--disable-microvm", "--force-9p", "--memory", memory,
            "--cpus", "2", "--verbose", "--cwd", str(cwd), "--exec", script]
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    output = done.stdout.decode(errors="replace")
    found = re.findall(rf"{_RC_MARKER}(\d+)", output)
    return GuestRun(int(found[-1]) if found else None, output)
