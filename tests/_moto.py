"""An S3 API server for the tests: moto's, on 127.0.0.1, a free port of its own."""

import logging
import socket


def start_s3():
    """(server, endpoint URL): stop the server with ``server.stop()``."""
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as s:                 # a free port (moto 5.0 cannot say which one it took for port 0)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"
