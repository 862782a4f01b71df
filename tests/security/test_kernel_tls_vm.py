"""Kernel TLS on a kernel that has it: tests/security/guest_kernel_tls.py run on Debian's kernel
in a VM (tests/security/vm.py), since the kernel the suite runs on may have no TLS module.

test_kernel_tls.py covers the rest here: the keys derived for every suite, checked against
OpenSSL's records, and the fallback to user-space TLS with real clients."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.security.vm import run_in_guest

REPO = Path(__file__).resolve().parents[2]
GUEST_TIMEOUT_S = 1500  # the guest's CPU is emulated: its run takes 3-4 minutes on a busy machine


@pytest.mark.first
@pytest.mark.timeout(GUEST_TIMEOUT_S + 60)
def test_kernel_tls_in_a_vm_with_the_tls_module() -> None:
    run = run_in_guest(f"{sys.executable} -m pytest -q -p no:cacheprovider tests/security/guest_kernel_tls.py",
                       REPO, GUEST_TIMEOUT_S, modules=("tls",))
    lines = [line for line in run.output.splitlines() if not line.startswith("[")]  # not the kernel's
    assert run.returncode == 0, "\n".join(lines[-80:])
    assert any("1 passed" in line for line in lines), "\n".join(lines[-20:])
