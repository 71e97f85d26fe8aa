#!/usr/bin/env python3
"""RSS of a `fedgate demo --keep` process holding connections that each
posted a large body and then stayed open (keep-alive), as a client holding
its `server.max_connections_per_client` would.

    scripts/kept_connections.py target/release/fedgate [--connections 250] [--body-kb 500]
    scripts/kept_connections.py target/release/fedgate --unfinished

With --unfinished, each connection sends only the start of a request head
and waits, as a slowloris client does between its bytes (fedgate closes
them at `server.header_timeout_secs`, 10 s; the RSS is read before that).

Prints the process's RSS before, with the connections open, and after they
close. Run with MIMALLOC_PURGE_DELAY=0 (as dist/fedgate.service sets it) to
see what is given back. Numbers: docs/performance.md, "Kept connections".
"""
import argparse
import re
import socket
import subprocess
import time


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def post_and_read_status(s, body_kb):
    """POST a body_kb KB form to the ACS on s; the status line of the answer."""
    body = b"SAMLResponse=" + b"A" * (body_kb * 1000)
    head = (
        b"POST /saml/contoso/acs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    s.settimeout(10)
    s.sendall(head + body)
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--connections", type=int, default=250)
    ap.add_argument("--body-kb", type=int, default=500)
    ap.add_argument("--unfinished", action="store_true")
    args = ap.parse_args()
    demo = subprocess.Popen(
        [args.binary, "demo", "--keep"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = None
        for line in demo.stdout:
            m = re.match(r"fedgate\s+http://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
            if line.startswith("--keep:"):
                break
        if port is None:
            raise SystemExit("the demo did not print fedgate's address")
        time.sleep(5)  # the demo's own logins' memory given back first
        before = rss_mb(demo.pid)
        held, statuses = [], set()
        for i in range(args.connections):
            # 250 from each loopback address, under the per-client cap.
            source = (f"127.0.0.{2 + i // 250}", 0)
            s = socket.create_connection(("127.0.0.1", port), source_address=source)
            if args.unfinished:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a")
            else:
                statuses.add(post_and_read_status(s, args.body_kb))
            held.append(s)
        time.sleep(1)
        with_held = rss_mb(demo.pid)
        for s in held:
            s.close()
        time.sleep(2)
        after = rss_mb(demo.pid)
        if statuses:
            print(f"answers: {sorted(statuses)}")
        what = (
            "each holding an unfinished head"
            if args.unfinished
            else f"kept after a {args.body_kb} KB post each"
        )
        print(
            f"RSS {before:.1f} MB before, {with_held:.1f} MB with {args.connections} "
            f"connections {what} (+{with_held - before:.1f} MB), {after:.1f} MB after they closed"
        )
    finally:
        demo.terminate()
        demo.wait()


if __name__ == "__main__":
    main()
