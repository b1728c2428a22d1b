"""A libzmq DEALER (through pyzmq) against the Rust ZmqServer, for tests/interop.rs.

usage: pyzmq_dealer.py ENDPOINT talk   send one frame, expect two single-part replies
                                       (one sent to this peer, one published to its group),
                                       print them, exit 0
       pyzmq_dealer.py ENDPOINT hang   send one frame, then wait to be killed
"""

import sys
import time

import zmq

endpoint, mode = sys.argv[1], sys.argv[2]
context = zmq.Context()
dealer = context.socket(zmq.DEALER)
dealer.setsockopt(zmq.LINGER, 1000)
dealer.setsockopt(zmq.RCVTIMEO, 10000)
dealer.connect(endpoint)
dealer.send(b"hello from libzmq " + zmq.zmq_version().encode())

if mode == "hang":
    print("sent", flush=True)
    time.sleep(60)
    sys.exit(1)

for _ in range(2):
    parts = dealer.recv_multipart()
    assert len(parts) == 1, f"expected one part, got {parts!r}"
    print(parts[0].decode(), flush=True)
dealer.close()
context.term()
