#!/usr/bin/python3
"""An HTTP proxy in front of s3rver that makes one PUT arrive late, as a request stuck in
the network does: once ARM_FILE exists, the first PUT whose path contains KEY_PART is held
(its connection is no longer forwarded, so the client times out and retries), and it is
sent to the server on a connection of its own once RELEASE_FILE exists. Prints "held" and
then "released HTTP STATUS" on stdout.

  late_put_proxy.py LISTEN_PORT UPSTREAM_PORT KEY_PART ARM_FILE RELEASE_FILE
"""

import os
import socket
import sys
import threading
import time

listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
key_part, arm_file, release_file = sys.argv[3].encode(), sys.argv[4], sys.argv[5]
held_once = threading.Lock()
held = False


def say(text):
    print(text, flush=True)


def release(data):
    while not os.path.exists(release_file):
        time.sleep(0.05)
    with socket.create_connection(("127.0.0.1", upstream_port)) as s:
        s.sendall(data)
        reply = s.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace")
    say(f"released {reply}")


def upstream_to_client(up, client):
    try:
        while data := up.recv(65536):
            client.sendall(data)
    except OSError:
        pass
    for s in (up, client):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client):
    global held
    up = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=upstream_to_client, args=(up, client), daemon=True).start()
    holding = None
    try:
        while data := client.recv(65536):
            if holding is None and os.path.exists(arm_file) and data.startswith(b"PUT ") and \
                    key_part in data.split(b"\r\n", 1)[0]:
                with held_once:
                    if not held:
                        held, holding = True, bytearray()
                        say("held")
            if holding is not None:
                holding += data
                continue
            up.sendall(data)
    except OSError:
        pass
    if holding is not None:
        # The client gave up on this connection; the request is still "in the network".
        threading.Thread(target=release, args=(bytes(holding),), daemon=True).start()
    try:
        up.shutdown(socket.SHUT_WR)
    except OSError:
        pass


listener = socket.create_server(("127.0.0.1", listen_port))
while True:
    c, _ = listener.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
