"""An S3-protocol server for the Delta tests: moto's server mode on 127.0.0.1, serving
one request at a time (threaded=False), on a free port.

    s3_server.py BUCKET

Creates BUCKET, prints `port N` once it serves, and serves until it is killed. moto
stands in for S3's object API (put, get, list with a delimiter, delete) and for its
conditional write (`If-None-Match: *`, refused with 412 when the object exists), the
put-if-absent each Delta commit relies on. It keeps every object in memory and checks
no signature.
"""

import socket
import sys

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server


def main():
    bucket = sys.argv[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = DomainDispatcherApplication(create_backend_app)
    server = make_server("127.0.0.1", port, app, threaded=False, request_handler=MotoRequestHandler)
    s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(bucket, "us-east-1")
    print(f"port {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
