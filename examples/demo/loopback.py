"""Loopback helpers for the demo script (bash has no portable way to do these; curl may be missing).

    python loopback.py free 2                        # print two free loopback ports, one a line
    python loopback.py wait 4317 4318 --timeout 30   # return once each port accepts connections
    python loopback.py fetch URL                     # GET URL, print the HTTP status and size
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now; held open together so they are distinct."""
    sockets = []
    try:
        for _ in range(count):
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            sockets.append(listener)
        return [listener.getsockname()[1] for listener in sockets]
    finally:
        for listener in sockets:
            listener.close()


def wait_for_ports(ports: Sequence[int], timeout: float) -> bool:
    """True once every port accepts a TCP connection on 127.0.0.1, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for port in ports:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)
    return True


def fetch_status(url: str, timeout: float = 10.0) -> tuple[int, int]:
    """(HTTP status, body size in bytes) of ``GET url``; an error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, len(response.read())
    except urllib.error.HTTPError as error:
        return error.code, len(error.read())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    free = commands.add_parser("free")
    free.add_argument("count", type=int)
    wait = commands.add_parser("wait")
    wait.add_argument("ports", type=int, nargs="+")
    wait.add_argument("--timeout", type=float, default=30.0)
    fetch = commands.add_parser("fetch")
    fetch.add_argument("url")
    args = parser.parse_args(argv)
    if args.command == "free":
        print("\n".join(str(port) for port in free_ports(args.count)))
        return 0
    if args.command == "fetch":
        status, size = fetch_status(args.url)
        print(f"  the page answers HTTP {status} ({size:,} bytes)")
        return 0
    if wait_for_ports(args.ports, args.timeout):
        return 0
    print(f"timed out after {args.timeout:g}s waiting for port(s) {args.ports}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
