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
import sys
from dataclasses import dataclass
from pathlib import Path

_RC_MARKER = "PYK-GUEST-EXIT="


def kernel_dir() -> Path:
    """Where ci/install.sh --test unpacks the kernel package (ci/common.sh's kernel_dir)."""
    return Path(os.environ.get("PYK_KERNEL_DIR", Path.home() / ".cache/pyk/kernel"))


def debian_kernel() -> Path:
    """The unpacked kernel's image (its modules beside it, under lib/modules, which virtme-ng
    links into the guest for modprobe); fails naming the install step when it is missing."""
    images = sorted(kernel_dir().glob("boot/vmlinuz-*"))
    if not images:
        raise FileNotFoundError(f"no kernel under {kernel_dir()}: run ci/install.sh --test")
    return images[-1]


@dataclass(frozen=True)
class GuestRun:
    returncode: int | None  # None: the command never finished (no marker in the output)
    output: str


def run_in_guest(command: str, cwd: Path, timeout: float, modules: tuple[str, ...] = (),
                 memory: str = "2G") -> GuestRun:
    """Boots the kernel, loads `modules` with modprobe, runs the shell `command` in `cwd` with this
    process's PATH, and powers off; raises subprocess.TimeoutExpired after `timeout`."""
    scripts = Path(sys.executable).parent  # virtme-ng's commands, installed with the test extra (a venv's bin)
    path = f"{scripts}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"
    loads = "".join(f"modprobe {shlex.quote(m)} && " for m in modules)
    script = f"export PATH={shlex.quote(path)}; {loads}{command}; echo {_RC_MARKER}$?"
    argv = [str(scripts / "vng"), "--run", str(debian_kernel()), "--disable-kvm", "--disable-microvm", "--force-9p", "--memory", memory,
            "--cpus", "2", "--verbose", "--cwd", str(cwd), "--exec", script]
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, "PATH": path})
    output = done.stdout.decode(errors="replace")
    found = re.findall(rf"{_RC_MARKER}(\d+)", output)
    return GuestRun(int(found[-1]) if found else None, output)
