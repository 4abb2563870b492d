"""Hostile-client helpers shared by the security tests and bench/robustness.py."""
import socket
import urllib.parse


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0


def slow_clients(url, n):
    """n connections that each send part of a request and one more header line (slowloris)."""
    u = urllib.parse.urlparse(url)
    socks = []
    for _ in range(n):
        s = socket.create_connection((u.hostname, u.port), timeout=10)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        socks.append(s)
    for s in socks:
        s.sendall(b"X-Slow: 1\r\n")
    return socks
