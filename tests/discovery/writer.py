#!/usr/bin/env python3
"""A bounded concurrent writer for tests/discovery, run inside the test's namespace (the members
listen on its loopback): puts <prefix><n> = <n> for n = 0, 1, ... through python3-etcd3, moving
to the next endpoint when one fails, and prints each key the cluster acknowledged, one a line.
Stops at the first of: the stop file exists, --max-puts puts, --max-seconds seconds.

    ip netns exec NS /usr/bin/python3 writer.py --stop-file F --prefix w/ HOST:PORT...
"""

import argparse
import os
import sys
import time

import etcd3  # system python only (python3-etcd3)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--prefix", default="w/")
    parser.add_argument("--max-puts", type=int, default=5000)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--cacert", help="TLS: the CA that checks the members")
    parser.add_argument("--cert", help="TLS: the client certificate to present")
    parser.add_argument("--key", help="TLS: its key")
    parser.add_argument("endpoints", nargs="+", help="host:port of each member's client URL")
    args = parser.parse_args()
    def connect(endpoint):
        host, port = endpoint.rsplit(":", 1)
        return etcd3.client(host=host, port=int(port), timeout=2, ca_cert=args.cacert,
                            cert_cert=args.cert, cert_key=args.key)

    clients = [connect(e) for e in args.endpoints]
    deadline = time.monotonic() + args.max_seconds
    current = 0
    n = 0
    while n < args.max_puts and time.monotonic() < deadline and not os.path.exists(
            args.stop_file):
        key = "%s%06d" % (args.prefix, n)
        try:
            clients[current].put(key, str(n))
        except Exception as e:  # any failure: unknown outcome; try the next member
            print("# put %s via %s failed: %s" % (key, args.endpoints[current], type(e).__name__),
                  flush=True)
            # A new channel: a failed one waits out gRPC's reconnect back-off (up to minutes),
            # long after the member it dials has started.
            clients[current].close()
            clients[current] = connect(args.endpoints[current])
            current = (current + 1) % len(clients)
            time.sleep(0.05)  # a failing member answers at once; do not spin on it
            n += 1
            continue
        print(key, flush=True)
        n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
