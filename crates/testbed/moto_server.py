"""Runs moto's AWS emulator on 127.0.0.1 on a free port for baton's tests and demo.

Prints `PORT <n>` once it listens, then serves until its standard input closes, which happens
when the process that started it exits, however it exits. So no emulator outlives its test run.
"""
import sys
import threading

from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server


def main() -> None:
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(f"PORT {server.server_port}", flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
