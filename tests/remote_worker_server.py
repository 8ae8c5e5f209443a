"""The command of the remote-worker test containers (tests/test_remote_workers.py): execnet's socket server
(``execnet/script/socketserver.py``, what ``--tx socket=HOST:PORT`` connects to) with one forked process
per connection. Each xdist worker is then a fresh interpreter, and killing one (a crashed worker) leaves the
server listening, so the worker xdist starts in its place connects at once. The worker's pid is written to
``/tmp/xdist-worker.pid`` (the tests kill it there). Standard library and execnet only: it runs on
Debian's python3 in the container."""

from __future__ import annotations

import os
import signal
import socket
import sys


def main() -> None:
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else ":8888").rpartition(":")
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
    server.listen(8)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the server reaps nothing: its workers are not waited on
    while True:
        client, address = server.accept()
        if os.fork():
            client.close()
            continue
        try:
            server.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the worker's sandbox waits on its programs
            line = client.makefile("rb").readline().rstrip()
            if line:  # not a probe of the port
                with open("/tmp/xdist-worker.pid", "w") as fh:
                    fh.write(str(os.getpid()))
                from execnet.gateway_base import get_execmodel

                source = eval(line)  # as execnet's socketserver.py does
                scope = {"clientsock": client, "address": address, "execmodel": get_execmodel("thread")}
                exec(compile(source + "\n", "<socket server>", "exec"), scope)
        finally:
            sys.stdout.flush()
            os._exit(0)


if __name__ == "__main__":
    main()
