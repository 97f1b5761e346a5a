"""The browser tests' servers get ports no other worker or process is handed meanwhile."""
from __future__ import annotations

import socket
from pathlib import Path

from .conftest import PORT_BLOCK, _free_port


def test_each_worker_picks_free_ports_of_its_own_below_the_ephemeral_range(monkeypatch):
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    lowest_ephemeral = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    ports = {}
    for worker in ("gw0", "gw1", "gw7"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        ports[worker] = {_free_port() for _ in range(20)}
    for worker, chosen in ports.items():
        assert max(chosen) < lowest_ephemeral, (worker, sorted(chosen))
        assert max(chosen) - min(chosen) < PORT_BLOCK, (worker, sorted(chosen))
        for port in chosen:  # free: a server can bind it
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
    blocks = [{port // PORT_BLOCK for port in chosen} for chosen in ports.values()]
    assert all(len(block) == 1 for block in blocks) and len(set.union(*blocks)) == len(blocks), ports
