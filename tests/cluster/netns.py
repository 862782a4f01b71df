"""A private network for fault tests: one network namespace per host, joined by veth pairs to a
bridge in the test's own namespace, on a private /24.  The bridge holds two addresses: .1, from
which the test's clients talk to the hosts, and .2, where ZooKeeper listens; host i is .(10+i).

A partition is a set of blackhole routes inside the namespaces (both directions between the two
sides, and optionally the cut side's route to ZooKeeper), so the test's clients still reach every
host, as clients on both sides of a real partition do.  `close()` deletes the namespaces and the
bridge (the veth pairs go with them)."""

from __future__ import annotations

import os
import random
import subprocess
from contextlib import suppress
from itertools import count

_serial = count()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def namespaces_available() -> str | None:
    """None when this process can make network namespaces (root, iproute2); else the reason."""
    name = f"pyk-probe-{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot make a network namespace here ({exc})"
    _ip("netns", "del", name)
    return None


class Network:
    """The bridge and `hosts` namespaces; `address(i)` is host i's, `zookeeper_address` the bridge's
    second address."""

    def __init__(self, hosts: int) -> None:
        self.tag = f"{os.getpid() % 100000}x{next(_serial)}"
        self.bridge = f"pkb{self.tag}"[:15]
        self.subnet = f"10.213.{random.randrange(256)}"
        self.namespaces: list[str] = []
        self._cut: list[tuple[str, str]] = []  # (namespace, destination) blackholed
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            for last in (1, 2):
                _ip("addr", "add", f"{self.subnet}.{last}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i in range(hosts):
                self._add_host(i)
        except BaseException:
            self.close()
            raise

    @property
    def client_address(self) -> str:
        return f"{self.subnet}.1"

    @property
    def zookeeper_address(self) -> str:
        return f"{self.subnet}.2"

    def address(self, host: int) -> str:
        return f"{self.subnet}.{10 + host}"

    def _add_host(self, i: int) -> None:
        ns, outer, inner = f"pyk-{self.tag}-h{i}", f"pkv{self.tag}h{i}"[:15], f"pkp{self.tag}h{i}"[:15]
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", outer, "master", self.bridge, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")

    def partition(self, isolated: list[int], zookeeper: bool = True) -> None:
        """Cuts the hosts in `isolated` off the other hosts (and off ZooKeeper unless `zookeeper`
        is False); the test's clients still reach everyone."""
        others = [i for i in range(len(self.namespaces)) if i not in isolated]
        for a in isolated:
            for b in others:
                self._blackhole(self.namespaces[a], self.address(b))
                self._blackhole(self.namespaces[b], self.address(a))
            if zookeeper:
                self._blackhole(self.namespaces[a], self.zookeeper_address)

    def _blackhole(self, ns: str, destination: str) -> None:
        _ip("-n", ns, "route", "add", "blackhole", f"{destination}/32")
        self._cut.append((ns, destination))

    def heal(self) -> None:
        while self._cut:
            ns, destination = self._cut.pop()
            _ip("-n", ns, "route", "del", "blackhole", f"{destination}/32")

    @property
    def partitioned(self) -> bool:
        return bool(self._cut)

    def close(self) -> None:
        """Deletes every namespace and the bridge (stop the hosts first: a namespace lives on
        while a process runs in it)."""
        for ns in self.namespaces:
            _ip("netns", "del", ns)
        self.namespaces.clear()
        with suppress(subprocess.CalledProcessError):
            _ip("link", "del", self.bridge)
