"""Python Netcore 0.1.3 peer used by the netcore-legacy interop tests.

Modes (all sockets are on 127.0.0.1, every process ends itself after --timeout):

  server  listen on an ephemeral port, print "PORT <n>", serve ONE connection
          routes: echo -> Response('echo', body); json -> Response('json', {...});
          anything else -> default handler answers with send_response(...)
  client  connect to --port, run a scenario, print "RESULT <json>" lines
  capture run Python client <-> recording proxy <-> Python server for a set of
          scenarios and write the raw bytes of each direction to --out

Netcore's Pipe threads are not daemons and busy-loop, so every exit path
uses os._exit.
"""

import argparse
import base64
import json
import logging
import os
import random
import socket
import sys
import threading
import time

from netcore import Endpoint, Pipe, Response, request


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def out(line):
    # Netcore prints its middleware list to stdout, so our lines carry a prefix.
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def watchdog(seconds, code=3):
    def run():
        time.sleep(seconds)
        log(f"netcore_peer: timeout after {seconds}s, exiting")
        os._exit(code)

    threading.Thread(target=run, daemon=True).start()


def exact_recv(sock):
    """recv(n) that returns exactly n bytes (Netcore's reader needs it)."""

    def recv(n):
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return bytes(buf)

    return recv


def make_server_endpoint(sock):
    pipe = Pipe(exact_recv(sock), sock.sendall)
    ep = Endpoint(pipe, max_workers=4)

    @ep.request("echo")
    def echo():
        return Response("echo", request.meta)

    @ep.request("json")
    def json_route():
        return Response("json", {"ok": True, "got": request.json})

    @ep.request("slow")
    def slow():
        time.sleep(0.2)
        return Response("slow", request.meta)

    @ep.default
    def fallback():
        ep.send_response(
            {"error": "unknown route", "route": request.route},
            {"message_id": request.message_id},
        )

    return ep


def run_server(args):
    watchdog(args.timeout)
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    out(f"PORT {lst.getsockname()[1]}")
    conn, _ = lst.accept()
    ep = make_server_endpoint(conn)
    ep.start(block=False)
    # Exit once the peer closes the connection (after letting sends flush).
    while True:
        time.sleep(0.05)
        if ep.pipe.recv_exception or not ep.running:
            time.sleep(0.1)
            os._exit(0)


def client_endpoint(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=None)
    ep = Endpoint(Pipe(exact_recv(sock), sock.sendall), max_workers=2)
    ep.start(block=False)
    return ep, sock


def result(obj):
    out("RESULT " + json.dumps(obj))


def run_client(args):
    watchdog(args.timeout)
    ep, sock = client_endpoint(args.port)
    done = threading.Event()
    if args.scenario == "echo":
        resp = ep.send("echo", b"hello from python", blocking_recv=True)
        result({"route": resp.route, "is_response": resp.is_response, "body": resp.string})
    elif args.scenario == "json":
        resp = ep.send("json", {"a": 1, "b": "x"}, blocking_recv=True)
        result({"route": resp.route, "is_response": resp.is_response, "json": resp.json})
    elif args.scenario == "big":
        body = bytes((i * 7 + 3) % 251 for i in range(args.size))
        resp = ep.send("echo", body, blocking_recv=True)
        result({"len": len(resp.meta), "equal": resp.meta == body})
    elif args.scenario == "concurrent":
        got = {}
        lock = threading.Lock()

        def cb(req):
            with lock:
                got[req.message_id] = req.string
                if len(got) == args.count:
                    done.set()

        sent = {}
        for i in range(args.count):
            ret = ep.send("echo", f"msg-{i}", callback=cb)
            # Endpoint.send returns a dict whenever the mission id differs
            # from the message id, which is always.
            mid = ret["message_id"] if isinstance(ret, dict) else ret
            sent[mid] = f"msg-{i}"
        done.wait(args.timeout)
        result({"all": got == sent, "count": len(got)})
    elif args.scenario == "cancel":
        # Two missions in flight; cancel the second (the cancel packet is
        # only sent while another mission is active), then wait for the
        # first one's response.
        body = b"c" * args.size
        got = {}
        # Netcore 0.1.3's send thread iterates a snapshot of its missions and
        # then looks each one up again: when cancel_mission removes one in
        # between, the thread dies of a KeyError ("Pipe error: '<id>'") and
        # the first mission is never finished. Report that instead of
        # waiting out the timeout, so the caller can tell it apart.
        peer_errors = []

        class CatchPipeError(logging.Handler):
            def emit(self, record):
                if record.getMessage().startswith("Pipe error"):
                    peer_errors.append(record.getMessage())
                    done.set()

        logging.getLogger("netcore.lso").addHandler(CatchPipeError())

        def cb(req):
            got["len"] = len(req.meta)
            done.set()

        ep.send("echo", body, callback=cb)
        ret = ep.send("echo", body)
        cancelled = ep.cancel_mission(ret["mission_extension"])
        done.wait(args.timeout / 2)
        result({
            "cancelled": cancelled,
            "first_len": got.get("len"),
            "peer_error": peer_errors[0] if peer_errors else None,
        })
    elif args.scenario == "unknown":
        resp = ep.send("no/such/route", b"?", blocking_recv=True)
        result({"is_response": resp.is_response, "json": resp.json})
    else:
        log("unknown scenario", args.scenario)
        os._exit(2)
    time.sleep(0.1)
    os._exit(0)


# --------------------------------------------------------------------------
# capture: Python client -> proxy -> Python server, recording both directions


class Recorder:
    def __init__(self):
        self.c2s = bytearray()
        self.s2c = bytearray()
        self.lock = threading.Lock()


def pump(src, dst, buf, lock):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            with lock:
                buf.extend(data)
            dst.sendall(data)
    except OSError:
        pass


def capture_pair():
    """Return (client_endpoint, server_endpoint, recorder)."""
    srv_lst = socket.socket()
    srv_lst.bind(("127.0.0.1", 0))
    srv_lst.listen(1)
    prx_lst = socket.socket()
    prx_lst.bind(("127.0.0.1", 0))
    prx_lst.listen(1)
    rec = Recorder()

    def proxy():
        down, _ = prx_lst.accept()
        up = socket.create_connection(srv_lst.getsockname())
        threading.Thread(target=pump, args=(down, up, rec.c2s, rec.lock), daemon=True).start()
        threading.Thread(target=pump, args=(up, down, rec.s2c, rec.lock), daemon=True).start()

    threading.Thread(target=proxy, daemon=True).start()
    holder = {}

    def server():
        conn, _ = srv_lst.accept()
        ep = make_server_endpoint(conn)
        ep.start(block=False)
        holder["ep"] = ep

    threading.Thread(target=server, daemon=True).start()
    cli = socket.create_connection(prx_lst.getsockname())
    cep = Endpoint(Pipe(exact_recv(cli), cli.sendall))
    cep.start(block=False)
    return cep, rec


def settle(rec, quiet=0.3):
    last = -1
    while True:
        with rec.lock:
            n = len(rec.c2s) + len(rec.s2c)
        if n == last:
            return
        last = n
        time.sleep(quiet)


def save(outdir, name, rec):
    with rec.lock:
        for direction, data in (("c2s", rec.c2s), ("s2c", rec.s2c)):
            with open(os.path.join(outdir, f"{name}.{direction}.bin"), "wb") as f:
                f.write(data)
    log(f"captured {name}: c2s={len(rec.c2s)} s2c={len(rec.s2c)}")


SCENARIOS = ["echo", "json", "big10000", "unknown_route", "cancel", "interleave", "empty"]


def run_capture(args):
    """Capture one scenario (one process each: Netcore's threads busy-loop and
    never stop, so sharing a process between scenarios starves the GIL)."""
    watchdog(args.timeout)
    os.makedirs(args.out, exist_ok=True)
    random.seed(7)
    name = args.scenario
    cep, rec = capture_pair()
    if name == "echo":
        cep.send("echo", b"hello", blocking_recv=True)
    elif name == "json":
        cep.send("json", {"a": 1, "b": "x"}, blocking_recv=True)
    elif name == "big10000":
        body = bytes((i * 7 + 3) % 251 for i in range(10000))
        cep.send("echo", body, blocking_recv=True)
    elif name == "unknown_route":
        cep.send("no/such/route", b"?", blocking_recv=True)
    elif name == "cancel":
        # A cancel is only put on the wire while another mission is being
        # sent (Pipe._send_thread drains its head queue inside the send_pool
        # loop), so cancel one of two missions while both are queued.
        big = b"\x00" * 20_000
        cep.send("slow", big)
        info = cep.send("slow", big)
        cep.cancel_mission(info["mission_extension"])
    elif name == "interleave":
        # Two multi-chunk missions queued together: chunks go round robin.
        cep.send("echo", b"a" * 9000)
        cep.send("echo", b"b" * 9000)
    elif name == "empty":
        # Python puts a head with length 0 and no data on the wire; the
        # receiver never completes it.
        cep.send("echo", b"")
    else:
        log("unknown scenario", name)
        os._exit(2)
    settle(rec, quiet=1.0)
    save(args.out, name, rec)
    os._exit(0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client", "capture"])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--scenario", default="echo")
    p.add_argument("--size", type=int, default=10000)
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--out", default="vectors")
    args = p.parse_args()
    try:
        {"server": run_server, "client": run_client, "capture": run_capture}[args.mode](args)
    except Exception as e:  # Netcore's threads would keep the process alive
        log(f"netcore_peer: {type(e).__name__}: {e}")
        os._exit(1)


if __name__ == "__main__":
    main()
