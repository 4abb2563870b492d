#!/usr/bin/env python3
"""Writes TensorBoard event files as a trial would, in one of two independent ways:
  --writer protobuf : Debian's python3-protobuf with classes protoc generated from
                      src/metrics/tf_event.proto (module tf_event_pb2 on PYTHONPATH);
                      TF1-style simple_value summaries; CRC32C from python3-crc32c if present.
  --writer raw      : bytes encoded by hand (no protobuf library), TF2-style float tensors
                      of shape [] with the scalars plugin's metadata; CRC32C computed here.
Files go to DIR/train/ and DIR/eval/ (accuracy, loss per step), flushed record by record."""
import argparse
import os
import socket
import struct
import time

_TABLE = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _TABLE.append(c)


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data):
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", masked(head)) + data + struct.pack("<I", masked(data))


def varint(v):
    out = b""
    while v >= 0x80:
        out += bytes([(v & 0x7F) | 0x80])
        v >>= 7
    return out + bytes([v])


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    return key + (varint(len(payload)) if wire == 2 else b"") + payload


def raw_event(wall, step=None, tag=None, value=None, version=None):
    out = field(1, 1, struct.pack("<d", wall))
    if step is not None:
        out += field(2, 0, varint(step))
    if version is not None:
        return out + field(3, 2, version.encode())
    tensor = field(1, 0, varint(1)) + field(2, 2, b"") + field(4, 2, struct.pack("<f", value))
    plugin = field(1, 2, field(1, 2, b"scalars"))
    summary_value = field(1, 2, tag.encode()) + field(8, 2, tensor) + field(9, 2, plugin)
    return out + field(5, 2, field(1, 2, summary_value))


def pb_event(pb, wall, step=None, tag=None, value=None, version=None):
    e = pb.Event(wall_time=wall)
    if step is not None:
        e.step = step
    if version is not None:
        e.file_version = version
    else:
        v = e.summary.value.add()
        v.tag = tag
        v.simple_value = value
    return e.SerializeToString()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--writer", choices=["protobuf", "raw"], required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lr", type=float, required=True)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    if a.writer == "protobuf":
        import tf_event_pb2 as pb
        encode = lambda **kw: pb_event(pb, **kw)
    else:
        encode = raw_event
    files = {}
    for sub in ("train", "eval"):
        os.makedirs(os.path.join(a.dir, sub), exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.v2"
        files[sub] = open(os.path.join(a.dir, sub, name), "ab")
        files[sub].write(frame(encode(wall=time.time(), version="brain.Event:2")))
    for step in range(1, a.steps + 1):
        loss = (a.lr - 0.03) ** 2 * 100 + 1.0 / step
        files["train"].write(frame(encode(wall=time.time(), step=step, tag="loss", value=loss)))
        files["eval"].write(frame(encode(wall=time.time(), step=step, tag="accuracy", value=1 - loss / 2)))
        for f in files.values():
            f.flush()
    print(f"wrote {a.steps} steps with the {a.writer} writer", flush=True)


if __name__ == "__main__":
    main()
