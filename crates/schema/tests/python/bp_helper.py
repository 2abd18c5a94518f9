"""Interop helper driving the real binary_protocol 0.2.2 package for netcore-schema tests.

Modes (all output is JSON or 'PORT <n>' lines on stdout):
  schema  --profile P                       print the profile's schema in netcore's schema-file JSON
  vectors                                   print byte vectors made by Message.create(...).to_bytes()
  encode  --file F                          encode the messages listed in F (JSON), print hex or null
  server  --profile P --transport tcp|udp   run a BinaryServer on 127.0.0.1:<ephemeral>, print 'PORT n'
  client  --profile P --transport tcp|udp --port N   run the request scenario, print results
  bench   --port N --seconds S --count N --window W --kind fixed|variable
          round trips and pipelined sends over TCP (SENSOR, or STATUS for variable)
"""

import argparse
import asyncio
import json
import sys
import time
import zlib
from enum import IntEnum

from binary_protocol import BinaryClient, BinaryServer, ProtocolConfig, TransportType
from binary_protocol.protocol.message_structure import FieldDefinition as FD
from binary_protocol.protocol.message_structure import MessageStructure as MS
from binary_protocol.protocol.messages import Message


class T(IntEnum):
    SENSOR = 1
    STATUS = 2
    MIXED = 3
    BLOB = 4
    NATIVE = 5
    EMPTY = 6
    EVENT = 7  # fire-and-forget (fixed layout): the server answers nothing
    NOTE = 8  # fire-and-forget (variable layout)


FIELDS = {
    T.SENSOR: [FD("sensor1", float, format_string=">f"), FD("sensor2", float, format_string=">f"),
               FD("sensor3", float, format_string=">f"), FD("sensor4", float, format_string=">f")],
    T.STATUS: [FD("status_code", int, format_string=">I"), FD("message", str)],
    T.MIXED: [FD("a", int, format_string="<h"), FD("b", int, format_string="<I"),
              FD("c", int, format_string=">q"), FD("d", float, format_string="<d"),
              FD("e", int, format_string="?"), FD("f", float, format_string=">e"),
              FD("g", int, format_string="B"), FD("name", str, fixed_length=8),
              FD("raw", bytes, fixed_length=4)],
    T.BLOB: [FD("id", int, format_string="<Q"), FD("data", bytes), FD("note", str),
             FD("flag", int, format_string="?"), FD("tag", str, fixed_length=4)],
    T.NATIVE: [FD("nl", int, format_string="l"), FD("nul", int, format_string="L"),
               FD("sl", int, format_string="=l"), FD("h", int, format_string="!h"),
               FD("b", int, format_string="b"), FD("sf", float, format_string="=f")],
    T.EMPTY: [],
    T.EVENT: [FD("sensor1", float, format_string=">f"), FD("sensor2", float, format_string=">f"),
              FD("sensor3", float, format_string=">f"), FD("sensor4", float, format_string=">f")],
    T.NOTE: [FD("status_code", int, format_string=">I"), FD("message", str)],
}

# profile -> (header_format, checksum enabled)
PROFILES = {
    "basic": (">H", False),
    "crc": ("<I", True),
    "byte": ("B", False),
    "wide": (">Q", True),
    "net": ("!H", True),
}


def crc32(b):
    return zlib.crc32(b).to_bytes(4, "big")


def make_config(profile, transport="tcp"):
    header, checksum = PROFILES[profile]
    return ProtocolConfig(
        message_type_enum=T,
        message_structures={t: MS(list(f)) for t, f in FIELDS.items()},
        header_format=header,
        transport_type=TransportType.UDP if transport == "udp" else TransportType.TCP,
        checksum_enabled=checksum,
        checksum_func=crc32 if checksum else None,
        checksum_verify=(lambda m, c: crc32(m) == c) if checksum else None,
        read_timeout=10.0,
        connect_timeout=10.0,
    )


def field_json(f):
    d = {"name": f.name, "type": f.field_type.__name__}
    if f.format_string:
        d["format"] = f.format_string
    if f.fixed_length:
        d["fixed_length"] = f.fixed_length
    return d


def schema_json(profile):
    header, checksum = PROFILES[profile]
    out = {"header_format": header,
           "messages": [{"name": t.name, "id": int(t), "fields": [field_json(f) for f in fs]}
                        for t, fs in FIELDS.items()]}
    if checksum:
        out["config"] = {"checksum_enabled": True, "checksum_size": 4}
    return out


# Requests sent by the client scenario and used for vectors.
CASES = [
    (T.SENSOR, {"sensor1": 1.5, "sensor2": -2.25, "sensor3": 0.0, "sensor4": 1024.0}),
    (T.STATUS, {"status_code": 200, "message": "hello wörld"}),
    (T.STATUS, {"status_code": 4294967295, "message": ""}),
    (T.MIXED, {"a": -32768, "b": 4000000000, "c": -9007199254740993, "d": 3.141592653589793,
               "e": True, "f": 0.333251953125, "g": 255, "name": "abc", "raw": b"\x01\x00\xff\x7f"}),
    (T.MIXED, {"a": 7, "b": 0, "c": 2 ** 62, "d": -0.5, "e": False, "f": 65504.0, "g": 0,
               "name": "eightchr", "raw": b"\x00\x00\x00\x00"}),
    (T.BLOB, {"id": 2 ** 64 - 1, "data": bytes(range(256)) * 3, "note": "ünïcode ✓", "flag": True, "tag": "ab"}),
    (T.BLOB, {"id": 0, "data": b"", "note": "", "flag": False, "tag": "wxyz"}),
    (T.NATIVE, {"nl": -(2 ** 40), "nul": 2 ** 40, "sl": -5, "h": -2, "b": -128, "sf": 0.1}),
    (T.EMPTY, {}),
]


def to_json(v):
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, dict):
        return {k: to_json(x) for k, x in v.items()}
    return v


def respond(t, d):
    """Server logic shared with the Rust side (see tests/interop.rs)."""
    if t == T.SENSOR:
        return T.SENSOR, {k: v + 1.0 for k, v in d.items()}
    if t == T.STATUS:
        return T.STATUS, {"status_code": (d["status_code"] + 1) % 2 ** 32, "message": d["message"].upper()}
    if t == T.BLOB:
        return T.BLOB, {"id": d["id"], "data": bytes(reversed(d["data"])), "note": d["note"],
                        "flag": not d["flag"], "tag": d["tag"]}
    return t, d


async def handler(t, d):
    if t in (T.EVENT, T.NOTE):
        return None
    return respond(t, d)


async def run_server(profile, transport):
    config = make_config(profile, transport)
    server = BinaryServer(config)
    for t in T:
        server.register_handler(t, handler)
    task = asyncio.create_task(server.start("127.0.0.1", 0))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if server._server is not None:
            break
    if transport == "tcp":
        port = server._server.sockets[0].getsockname()[1]
    else:
        port = server._server.getsockname()[1]
    print(f"PORT {port}", flush=True)
    await task


async def run_client(profile, transport, port):
    config = make_config(profile, transport)
    results = []
    client = BinaryClient(config)
    await client.connect("127.0.0.1", port)
    for t, d in CASES:
        await client.send_message(t, d)
        rt, rd = await client.receive_message()
        results.append({"type": int(t), "req": to_json(d), "resp_type": int(rt), "resp": to_json(rd)})
    if transport == "tcp":
        # binary_protocol sends a type outside the enum as a bare header.
        await client.send_message(77, {})
        rt, rd = await client.receive_message()
        results.append({"type": 77, "req": {}, "resp_type": int(rt), "resp": to_json(rd)})
    await client.disconnect()
    # One-shot helper of the package.
    rt, rd = await BinaryClient.send_and_receive_single(config, "127.0.0.1", port, *CASES[0])
    results.append({"type": int(CASES[0][0]), "req": to_json(CASES[0][1]), "resp_type": int(rt),
                    "resp": to_json(rd)})
    print(json.dumps(results), flush=True)


def vectors():
    out = []
    for profile in PROFILES:
        config = make_config(profile)
        for t, d in CASES:
            wire = Message.create(config, t, d).to_bytes(config)
            out.append({"profile": profile, "type": int(t), "data": to_json(d), "hex": wire.hex()})
        nf = Message.create(config, config.not_found_type, {}).to_bytes(config)
        out.append({"profile": profile, "type": None, "data": {}, "hex": nf.hex()})
    print(json.dumps(out))


def encode_file(path):
    """Encode the messages listed in a JSON file; None where the package raises."""
    with open(path) as f:
        items = json.load(f)
    out = []
    for it in items:
        config = make_config(it["profile"])
        t = T(it["type"])
        data = {}
        for fd in FIELDS[t]:
            v = it["data"][fd.name]
            data[fd.name] = bytes(v) if fd.field_type is bytes else v
        try:
            out.append(Message.create(config, t, data).to_bytes(config).hex())
        except Exception:
            out.append(None)
    print(json.dumps(out))


async def run_bench(port, seconds, count, window, kind):
    config = make_config("basic")
    t, d = CASES[0] if kind == "fixed" else CASES[1]
    client = BinaryClient(config)
    await client.connect("127.0.0.1", port)
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    n = 0
    while n < count and time.perf_counter() < deadline:
        await client.send_message(t, d)
        await client.receive_message()
        n += 1
    rt = n / (time.perf_counter() - start)
    start = time.perf_counter()
    deadline = start + seconds
    m = 0
    while m < count and time.perf_counter() < deadline:
        for _ in range(window):
            await client.send_message(t, d)
        for _ in range(window):
            await client.receive_message()
        m += window
    pipe = m / (time.perf_counter() - start)
    # One-way sends: EVENT messages get no answer; one request at the end confirms that
    # the server has handled all of them (it handles a connection's messages in order).
    start = time.perf_counter()
    deadline = start + seconds
    k = 0
    while k < count and time.perf_counter() < deadline:
        if kind == "fixed":
            await client.send_message(T.EVENT, CASES[0][1])
        else:
            await client.send_message(T.NOTE, CASES[1][1])
        k += 1
    await client.send_message(t, d)
    await client.receive_message()
    one_way = k / (time.perf_counter() - start)
    await client.disconnect()
    print(json.dumps({"round_trip_msgs_per_s": rt, "round_trips": n,
                      "pipelined_msgs_per_s": pipe, "pipelined": m,
                      "one_way_msgs_per_s": one_way, "one_way": k}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode")
    p.add_argument("--profile", default="basic")
    p.add_argument("--transport", default="tcp")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--count", type=int, default=100000)
    p.add_argument("--window", type=int, default=64)
    p.add_argument("--kind", default="fixed", choices=["fixed", "variable"])
    p.add_argument("--file", default="")
    a = p.parse_args()
    if a.mode == "schema":
        print(json.dumps(schema_json(a.profile)))
    elif a.mode == "vectors":
        vectors()
    elif a.mode == "encode":
        encode_file(a.file)
    elif a.mode == "server":
        asyncio.run(run_server(a.profile, a.transport))
    elif a.mode == "client":
        asyncio.run(run_client(a.profile, a.transport, a.port))
    elif a.mode == "bench":
        asyncio.run(run_bench(a.port, a.seconds, a.count, a.window, a.kind))
    else:
        sys.exit(f"unknown mode {a.mode}")


if __name__ == "__main__":
    main()
