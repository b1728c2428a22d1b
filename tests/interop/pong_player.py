#!/usr/bin/env python3
"""A Distributed Pong player in Python, written from docs/protocol.md alone.

It is the proof that the protocol document is enough to implement a client: nothing here
was taken from the Rust code. It speaks the WebSocket transport (one binary WebSocket
message per frame, docs/transports/websocket.md) with the `websockets` package's sync
client, and the standard library for everything else: postcard encoding, SipHash-2-4
signatures, the FNV-1a state hash, clock sync, the two-phase start, inputs, ticks, gaps,
pauses and resumes.

It does not simulate the game. What it knows of the ball comes from keyframes, which it
asks for with `Resync{from_tick: 0}` (the server sends one at most every 200 ms); between
them it extrapolates the ball in a straight line with mirror bounces, and moves its paddle
toward where the ball will cross its side. It trusts the server's ticks for everything
else, and checks every keyframe it gets against the hash of the tick it belongs to.

Usage:
    pong_player.py --server ws://127.0.0.1:7878 --name py --players 2 [--room R]
    pong_player.py --self-test          # every example frame of docs/protocol.md

At `MatchOver` it prints one JSON line on stdout, with the keys `pong bot --json` prints,
and exits 0. Logs go to stderr. Any refusal, close or timeout exits 1 with a message.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import re
import sys
import time
from pathlib import Path

PROTOCOL_VERSION = 3
MAX_FRAME_LEN = 1024
M64 = (1 << 64) - 1

# --------------------------------------------------------------------------------------
# Postcard, as the table "Encoding rules (postcard 1)" gives it.
# --------------------------------------------------------------------------------------


class DecodeError(Exception):
    """A frame that is not a message of the protocol."""


# Type descriptions. Scalars are strings; compound types are tuples.
U8, I8, U16, U32, U64, I32, BOOL, STR, BYTES = (
    "u8", "i8", "u16", "u32", "u64", "i32", "bool", "str", "bytes",
)
SEAT = "seat"  # a u8 from 0 to 3
HASH = "hash"  # [u8; 8], a little-endian u64
TOKEN = "token"  # [u8; 16]

VARINT_BYTES = {U16: 3, U32: 5, U64: 10}
VARINT_MAX = {U16: 0xFFFF, U32: 0xFFFF_FFFF, U64: M64}


def opt(t):
    return ("opt", t)


def vec(t):
    return ("vec", t)


def arr(t, n):
    return ("arr", t, n)


def struct(*fields):
    return ("struct", fields)


def enum(*variants):
    """Variants in index order: (name, payload type), the payload None for a unit variant.
    A unit variant's value is its name; any other is (name, payload)."""
    return ("enum", variants)


class Writer:
    def __init__(self) -> None:
        self.buf = bytearray()

    def varint(self, n: int) -> None:
        while True:
            byte = n & 0x7F
            n >>= 7
            if n:
                self.buf.append(byte | 0x80)
            else:
                self.buf.append(byte)
                return

    def write(self, t, v) -> None:
        if t in (U8, SEAT):
            if not 0 <= v <= (3 if t == SEAT else 255):
                raise ValueError(f"{t} out of range: {v}")
            self.buf.append(v)
        elif t == I8:
            self.buf.append(v & 0xFF)
        elif t in VARINT_BYTES:
            if not 0 <= v <= VARINT_MAX[t]:
                raise ValueError(f"{t} out of range: {v}")
            self.varint(v)
        elif t == I32:
            self.varint(((v << 1) ^ (v >> 31)) & 0xFFFF_FFFF)
        elif t == BOOL:
            self.buf.append(1 if v else 0)
        elif t == STR:
            raw = v.encode("utf-8")
            self.varint(len(raw))
            self.buf += raw
        elif t == BYTES:
            self.varint(len(v))
            self.buf += v
        elif t == HASH:
            self.buf += v.to_bytes(8, "little")
        elif t == TOKEN:
            if len(v) != 16:
                raise ValueError("a token is 16 bytes")
            self.buf += v
        elif t[0] == "opt":
            if v is None:
                self.buf.append(0)
            else:
                self.buf.append(1)
                self.write(t[1], v)
        elif t[0] == "vec":
            self.varint(len(v))
            for item in v:
                self.write(t[1], item)
        elif t[0] == "arr":
            if len(v) != t[2]:
                raise ValueError(f"expected {t[2]} elements")
            for item in v:
                self.write(t[1], item)
        elif t[0] == "struct":
            for name, ft in t[1]:
                self.write(ft, v[name])
        elif t[0] == "enum":
            name, payload = (v, None) if isinstance(v, str) else v
            for index, (vname, vt) in enumerate(t[1]):
                if vname == name:
                    self.varint(index)
                    if vt is not None:
                        self.write(vt, payload)
                    return
            raise ValueError(f"no variant {name}")
        else:
            raise ValueError(f"unknown type {t}")


class Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise DecodeError("truncated")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(out)

    def varint(self, t) -> int:
        n = 0
        for i in range(VARINT_BYTES[t]):
            b = self.byte()
            n |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                if n > VARINT_MAX[t]:
                    raise DecodeError(f"{t} out of range")
                return n
        raise DecodeError(f"varint too long for {t}")

    def read(self, t):
        if t == U8:
            return self.byte()
        if t == SEAT:
            seat = self.byte()
            if seat > 3:
                raise DecodeError(f"seat {seat}")
            return seat
        if t == I8:
            b = self.byte()
            return b - 256 if b >= 128 else b
        if t in VARINT_BYTES:
            return self.varint(t)
        if t == I32:
            z = self.varint(U32)
            return (z >> 1) ^ -(z & 1)
        if t == BOOL:
            b = self.byte()
            if b > 1:
                raise DecodeError("bad bool")
            return b == 1
        if t == STR:
            raw = self.take(self.varint(U32))
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DecodeError("bad UTF-8") from e
        if t == BYTES:
            return self.take(self.varint(U32))
        if t == HASH:
            return int.from_bytes(self.take(8), "little")
        if t == TOKEN:
            return self.take(16)
        kind = t[0]
        if kind == "opt":
            tag = self.byte()
            if tag > 1:
                raise DecodeError("bad option")
            return self.read(t[1]) if tag else None
        if kind == "vec":
            count = self.varint(U32)
            if count > len(self.data) - self.pos:  # every element takes a byte at least
                raise DecodeError("truncated")
            return [self.read(t[1]) for _ in range(count)]
        if kind == "arr":
            return [self.read(t[1]) for _ in range(t[2])]
        if kind == "struct":
            return {name: self.read(ft) for name, ft in t[1]}
        if kind == "enum":
            index = self.varint(U32)
            if index >= len(t[1]):
                raise DecodeError(f"unknown variant {index}")
            name, vt = t[1][index]
            return name if vt is None else (name, self.read(vt))
        raise ValueError(f"unknown type {t}")


def encode(t, v) -> bytes:
    w = Writer()
    w.write(t, v)
    return bytes(w.buf)


# --------------------------------------------------------------------------------------
# The messages, field by field ("Messages, field by field").
# --------------------------------------------------------------------------------------

SIDE = enum(("Left", None), ("Right", None), ("Top", None), ("Bottom", None))
INTENT = enum(("Stop", None), ("Minus", None), ("Plus", None))
CONFIG = struct(("players", U8), ("lives", U8), ("tick_hz", U16), ("seed", U64))
MEMBER = struct(("player", SEAT), ("name", STR), ("ready", BOOL), ("connected", BOOL))
LOST = struct(("player", SEAT), ("deadline", U64))
OUT_REASON = enum(("NoLives", None), ("Forfeit", None))
STANDING = struct(
    ("player", SEAT), ("name", STR), ("lives", U8), ("rank", U8),
    ("out_tick", opt(U32)), ("reason", opt(OUT_REASON)),
)
BALL = enum(
    ("Resting", struct(("timer", U16), ("toward", SEAT))),
    ("Moving", struct(("x", I32), ("y", I32), ("vx", I32), ("vy", I32), ("hits", U8))),
)
MATCH_STATE = struct(("tick", U32), ("ball", BALL), ("paddles", arr(I32, 4)), ("lives", arr(U8, 4)))
TICK_INPUT = struct(("intents", arr(INTENT, 4)), ("forfeit", U8))
REJECT = enum(*[(n, None) for n in (
    "BadPlayerCount", "RoomFull", "ServerFull", "UnknownSession", "BadProof",
    "RateLimited", "ShuttingDown", "TooManyLinks", "TooManyMatches",
)])
CLOSE_REASON = enum(*[(n, None) for n in (
    "Malformed", "Flooding", "Replaced", "Shutdown", "LobbyExpired", "Idle",
)])

OPEN_MSG = enum(
    ("Join", struct(("name", STR), ("players", opt(U8)), ("room", opt(STR)))),
    ("Resume", struct(("session", U32),)),
)
INPUT_RUN = struct(("first_tick", U32), ("intents", BYTES))
SESSION_MSG = enum(
    ("Ready", None),
    ("Input", INPUT_RUN),
    ("Ping", struct(("id", U32), ("client_time", U64))),
    ("Resync", struct(("from_tick", U32),)),
    ("Prove", struct(("nonce", U64),)),
    ("Leave", None),
)
TICK = struct(
    ("tick", U32), ("intents", U8), ("forfeit", U8), ("acks", arr(I8, 4)), ("hash", HASH),
)
SERVER_MSG = enum(
    ("Welcome", struct(
        ("session", U32), ("token", TOKEN), ("match_id", U32), ("player", SEAT),
        ("side", SIDE), ("paddle", I32), ("config", CONFIG), ("resumed", BOOL),
    )),
    ("Challenge", struct(("session", U32), ("nonce", U64), ("next_seq", U32))),
    ("Rejected", REJECT),
    ("Pong", struct(("id", U32), ("client_time", U64), ("server_time", U64))),
    ("Lobby", struct(
        ("match_id", U32), ("epoch", U32), ("room", opt(STR)), ("seats", U8),
        ("members", vec(MEMBER)),
    )),
    ("StartAt", struct(("epoch", U32), ("tick", U32), ("server_time", U64))),
    ("Tick", TICK),
    ("Keyframe", struct(("state", MATCH_STATE), ("input", TICK_INPUT), ("acks", arr(I8, 4)))),
    ("Paused", struct(("epoch", U32), ("tick", U32), ("lost", vec(LOST)))),
    ("MatchOver", struct(
        ("tick", U32), ("winner", opt(SEAT)), ("standings", vec(STANDING)), ("final_hash", HASH),
    )),
    ("Closed", CLOSE_REASON),
)

INTENT_BITS = {"Stop": 0, "Minus": 1, "Plus": 2}
INTENT_NAMES = {v: k for k, v in INTENT_BITS.items()}
ACK_NONE = -128
MAX_RUN = 64  # 16 bytes of four intents


def pack_intents(intents: list[str]) -> bytes:
    """Four intents a byte, least significant bits first; 3 pads the last byte."""
    if not 1 <= len(intents) <= MAX_RUN:
        raise ValueError("a run holds 1 to 64 intents")
    out = bytearray()
    for i in range(0, len(intents), 4):
        byte = 0
        for j in range(4):
            bits = INTENT_BITS[intents[i + j]] if i + j < len(intents) else 3
            byte |= bits << (2 * j)
        out.append(byte)
    return bytes(out)


def unpack_intents(packed: bytes) -> list[str]:
    if not 1 <= len(packed) <= MAX_RUN // 4:
        raise DecodeError("a run is 1 to 16 bytes")
    out: list[str] = []
    padding = False
    for byte in packed:
        for j in range(4):
            bits = (byte >> (2 * j)) & 3
            if bits == 3:
                padding = True
            elif padding:
                raise DecodeError("an intent after the padding")
            else:
                out.append(INTENT_NAMES[bits])
    if padding and len(out) <= 4 * (len(packed) - 1):
        raise DecodeError("a whole byte of padding")
    if not out:
        raise DecodeError("an empty run")
    return out


# --------------------------------------------------------------------------------------
# SipHash-2-4 (the tag of signed frames) and FNV-1a 64 (the state hash).
# --------------------------------------------------------------------------------------


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & M64


def siphash24(key: bytes, data: bytes) -> int:
    """SipHash-2-4 with a 16-byte key: k0 the first 8 bytes, k1 the last, little-endian."""
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    v = [
        k0 ^ 0x736F6D6570736575,
        k1 ^ 0x646F72616E646F6D,
        k0 ^ 0x6C7967656E657261,
        k1 ^ 0x7465646279746573,
    ]

    def rounds(n: int) -> None:
        v0, v1, v2, v3 = v
        for _ in range(n):
            v0 = (v0 + v1) & M64
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & M64
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & M64
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & M64
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)
        v[:] = [v0, v1, v2, v3]

    end = len(data) - len(data) % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v[3] ^= m
        rounds(2)
        v[0] ^= m
    last = ((len(data) & 0xFF) << 56) | int.from_bytes(data[end:], "little")
    v[3] ^= last
    rounds(2)
    v[0] ^= last
    v[2] ^= 0xFF
    rounds(4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def state_hash(state: dict) -> int:
    """The hash a Tick carries, of the state after that tick ("The state hash")."""
    out = bytearray(state["tick"].to_bytes(4, "little"))
    ball = state["ball"]
    if ball[0] == "Resting":
        out.append(0)
        out += ball[1]["timer"].to_bytes(2, "little")
        out.append(ball[1]["toward"])
    else:
        out.append(1)
        for k in ("x", "y", "vx", "vy"):
            out += ball[1][k].to_bytes(4, "little", signed=True)
        out.append(ball[1]["hits"])
    for p in state["paddles"]:
        out += p.to_bytes(4, "little", signed=True)
    out += bytes(state["lives"])
    return fnv1a64(bytes(out))


# --------------------------------------------------------------------------------------
# Frames ("Frames").
# --------------------------------------------------------------------------------------


def open_frame(msg) -> bytes:
    return bytes([PROTOCOL_VERSION, 0]) + encode(OPEN_MSG, msg)


def signed_frame(session: int, seq: int, token: bytes, msg) -> bytes:
    body = bytes([PROTOCOL_VERSION, 1]) + encode(U32, session) + encode(U32, seq)
    body += encode(SESSION_MSG, msg)
    return body + siphash24(token, body).to_bytes(8, "little")


def decode_client(frame: bytes, token: bytes | None = None):
    """('open', msg) or ('signed', session, seq, msg, tag_ok); for the self-test."""
    if not frame:
        raise DecodeError("empty")
    if len(frame) > MAX_FRAME_LEN:
        raise DecodeError("too large")
    if frame[0] != PROTOCOL_VERSION:
        raise DecodeError(f"unknown version {frame[0]}")
    if len(frame) < 2:
        raise DecodeError("truncated")
    r = Reader(frame, 2)
    if frame[1] == 0:
        msg = r.read(OPEN_MSG)
        if r.pos != len(frame):
            raise DecodeError("trailing bytes")
        return ("open", msg)
    if frame[1] == 1:
        if len(frame) < 2 + 8:
            raise DecodeError("truncated")
        r = Reader(frame[:-8], 2)
        session, seq, msg = r.read(U32), r.read(U32), r.read(SESSION_MSG)
        if r.pos != len(frame) - 8:
            raise DecodeError("trailing bytes")
        if isinstance(msg, tuple) and msg[0] == "Input":
            unpack_intents(msg[1]["intents"])
        tag_ok = token is not None and siphash24(token, frame[:-8]) == int.from_bytes(
            frame[-8:], "little"
        )
        return ("signed", session, seq, msg, tag_ok)
    raise DecodeError(f"unknown kind {frame[1]}")


def server_frame(msg) -> bytes:
    return bytes([PROTOCOL_VERSION]) + encode(SERVER_MSG, msg)


def decode_server(frame: bytes):
    if not frame:
        raise DecodeError("empty")
    if len(frame) > MAX_FRAME_LEN:
        raise DecodeError("too large")
    if frame[0] != PROTOCOL_VERSION:
        raise DecodeError(f"unknown version {frame[0]}")
    r = Reader(frame, 1)
    msg = r.read(SERVER_MSG)
    if r.pos != len(frame):
        raise DecodeError("trailing bytes")
    if not isinstance(msg, str) and msg[0] == "Tick":
        for seat in range(4):
            if (msg[1]["intents"] >> (2 * seat)) & 3 == 3:
                raise DecodeError("intent 3 in a tick")
    return msg


def hex_of(b: bytes) -> str:
    return " ".join(f"{x:02x}" for x in b)


# --------------------------------------------------------------------------------------
# The arena ("Coordinates", with rules.md's sizes), for tracking the ball.
# --------------------------------------------------------------------------------------

UNITS = 16  # units per pixel


class Arena:
    def __init__(self, players: int) -> None:
        two = players <= 2
        self.width = (800 if two else 720) * UNITS
        self.height = (600 if two else 720) * UNITS
        self.corner = 0 if two else 56 * UNITS
        self.ball = 12 * UNITS
        self.paddle_len = 96 * UNITS
        self.paddle_thick = 12 * UNITS
        self.inset = 28 * UNITS
        self.paddle_speed = 7 * UNITS

    def side_length(self, side: str) -> int:
        return self.height if side in ("Left", "Right") else self.width

    def paddle_range(self, side: str) -> tuple[int, int]:
        return self.corner, self.side_length(side) - self.corner - self.paddle_len

    def clamp_paddle(self, side: str, pos: int) -> int:
        lo, hi = self.paddle_range(side)
        return max(lo, min(hi, pos))


def fold(pos: float, v: float, lo: float, hi: float) -> tuple[float, float]:
    """Where a point that moved freely to `pos` (at velocity `v`) is between two mirrors at
    `lo` and `hi`, and its velocity there."""
    span = hi - lo
    if span <= 0:
        return lo, v
    p = (pos - lo) % (2 * span)
    return (lo + p, v) if p <= span else (lo + 2 * span - p, -v)


# --------------------------------------------------------------------------------------
# The player.
# --------------------------------------------------------------------------------------


class Failure(Exception):
    """The player cannot go on: refused, closed, timed out."""


def log(who: str, text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [{who}] {text}", file=sys.stderr, flush=True)


def local_us() -> int:
    return time.monotonic_ns() // 1000


RETRY = 0.5  # requests are repeated every 500 ms until answered
GAP_WAIT = 0.25  # a gap in ticks waits this long for late ticks before a Resync
SERVER_SILENCE = 1.5  # nothing from the server this long: it is lost
KEYFRAME_EVERY = 0.25  # how often to ask for a keyframe while playing


class Player:
    def __init__(self, args) -> None:
        self.args = args
        self.who = f"py {args.name}"
        self.deadline = time.monotonic() + args.timeout
        self.ws = None
        self.link = contextlib.ExitStack()
        self.last_heard = time.monotonic()
        # Seat.
        self.session: int | None = None
        self.token = b""
        self.seq = 1
        self.match_id = 0
        self.me = 0
        self.side = "Left"
        self.config: dict = {}
        self.arena: Arena | None = None
        # Clock: (round trip, offset) of the last 16 pings, µs.
        self.samples: list[tuple[int, int]] = []
        self.ping_id = 0
        self.next_ping = 0.0
        self.new_link_check = False
        self.kept_clock = False  # the samples of the last link hold on this one
        # Phase.
        # joining, resuming (Resume sent), back (resumed, awaiting the phase message), lobby,
        # playing (from the first StartAt, countdown included), paused, over.
        self.phase = "joining"
        self.epoch = -1
        self.next_retry = 0.0
        self.ready_said = False
        self.anchor: tuple[int, int] | None = None  # (tick, server time) of the last StartAt
        self.started = False
        # Ticks.
        self.last_tick = 0
        self.hashes: dict[int, int] = {}
        self.applied: dict[int, int] = {}  # tick -> my applied intent bits
        self.pending: dict[int, dict] = {}
        self.gap_since: float | None = None
        self.next_resync = 0.0
        # Inputs.
        self.decided: dict[int, str] = {}
        self.decided_upto = 0
        self.acked = 0
        self.ticks_seen = 0
        self.keyframes_checked = 0
        self.ticks_late = 0  # ticks the server had no intent of ours for: ours came late
        # Tracking.
        self.keyframe: dict | None = None
        self.rng = random.Random(args.seed)
        self.approaching = False
        self.aim = 0  # where on the paddle to meet the ball (from its centre), units
        self.paddle = 0
        self.paddle_tick = 0
        self.next_keyframe_ask = 0.0
        # Report.
        self.over: dict | None = None
        self.pauses = 0
        self.desyncs = 0
        self.resumes = 0
        self.final_keyframe: dict | None = None
        self.dropped = False

    # -- link --------------------------------------------------------------------------

    def connect(self) -> None:
        from websockets.sync.client import connect

        timeout = max(0.1, min(5.0, self.deadline - time.monotonic()))
        # Entered as a context (websockets 17.1 warns otherwise); leaving it closes the link.
        self.link = contextlib.ExitStack()
        self.ws = self.link.enter_context(connect(
            self.args.server, open_timeout=timeout, close_timeout=1, max_size=MAX_FRAME_LEN,
            compression=None,
        ))
        self.last_heard = time.monotonic()
        log(self.who, f"connected to {self.args.server}")

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.link.close()
            except Exception:  # noqa: BLE001 - closing a broken link may fail any way
                pass
            self.ws = None

    def send(self, frame: bytes) -> None:
        """Sends a frame; a link that fails is closed, and the loop reconnects."""
        if self.ws is None:
            return
        try:
            self.ws.send(frame)
        except Exception as e:  # noqa: BLE001 - websockets' ConnectionClosed and OSError
            log(self.who, f"link lost while sending: {e}")
            self.close()

    def send_signed(self, msg) -> None:
        frame = signed_frame(self.session, self.seq, self.token, msg)
        self.seq += 1
        self.send(frame)

    # -- clock -------------------------------------------------------------------------

    def offset(self) -> int:
        return min(self.samples)[1]

    def rtt(self) -> int:
        return min(self.samples)[0]

    def server_now(self) -> int:
        return local_us() + self.offset()

    def ping(self) -> None:
        self.ping_id += 1
        self.send_signed(("Ping", {"id": self.ping_id, "client_time": local_us()}))

    def on_pong(self, m: dict) -> None:
        now = local_us()
        rtt = max(0, now - m["client_time"])
        offset = m["server_time"] - (m["client_time"] + now) // 2
        if self.new_link_check:
            # The first sample on a new link decides whether the kept ones still hold.
            self.new_link_check = False
            if self.samples and abs(offset - self.offset()) <= 2 * rtt + 1000:
                self.kept_clock = True
            else:
                log(self.who, "the server's clock moved: clock samples dropped")
                self.samples.clear()
        self.samples = (self.samples + [(rtt, offset)])[-16:]

    # -- phases ------------------------------------------------------------------------

    def newer(self, epoch: int) -> bool:
        if epoch < self.epoch:
            return False
        self.epoch = epoch
        return True

    def on_welcome(self, w: dict) -> None:
        if self.session is not None and w["session"] != self.session:
            return
        first = self.session is None
        self.session, self.token = w["session"], w["token"]
        self.match_id, self.me, self.side = w["match_id"], w["player"], w["side"]
        self.config = w["config"]
        self.arena = Arena(self.config["players"])
        if first:
            self.paddle = w["paddle"]
            log(self.who, f"welcome: match {self.match_id}, seat P{self.me + 1} ({self.side}), "
                f"{self.config['players']} players, {self.config['lives']} lives, "
                f"{self.config['tick_hz']} Hz")
        if w["resumed"]:
            self.resumes += 1
            log(self.who, "seat taken back")
            if self.started:
                self.send_signed(("Resync", {"from_tick": self.last_tick + 1}))
        if self.phase in ("joining", "resuming"):
            # After a resume, the phase message that follows says where the match stands.
            self.phase = "back" if self.resumes else "lobby"
        self.next_ping = 0.0

    def on_lobby(self, m: dict) -> None:
        if not self.newer(m["epoch"]):
            return
        if self.phase in ("playing", "over"):
            return
        self.phase = "lobby"
        self.anchor = None
        me = next((x for x in m["members"] if x["player"] == self.me), None)
        self.ready_said = bool(me and me["ready"])

    def on_start_at(self, m: dict) -> None:
        if not self.newer(m["epoch"]) or self.phase == "over":
            return
        first = self.anchor is None or self.phase != "playing"
        self.anchor = (m["tick"], m["server_time"])
        if first:
            wait = (m["server_time"] - self.server_now()) / 1e6 if self.samples else 0
            log(self.who, f"start at tick {m['tick']}, in {wait:.2f} s")
            # Intents sent for ticks from here on (before a pause) are decided again.
            self.decided_upto = m["tick"] - 1
            self.decided = {t: i for t, i in self.decided.items() if t <= self.decided_upto}
        self.phase = "playing"

    def on_paused(self, m: dict) -> None:
        if not self.newer(m["epoch"]) or self.phase == "over":
            return
        if self.phase != "paused":
            self.pauses += 1
            lost = ", ".join(f"P{x['player'] + 1}" for x in m["lost"]) or "nobody (all back)"
            log(self.who, f"paused at tick {m['tick']}, waiting for {lost}")
        self.phase = "paused"
        self.anchor = None

    # -- ticks -------------------------------------------------------------------------

    def on_tick(self, t: dict) -> None:
        n = t["tick"]
        if n <= self.last_tick:
            return  # a duplicate
        self.pending[n] = t
        while self.last_tick + 1 in self.pending:
            self.apply(self.pending.pop(self.last_tick + 1))
        self.pending = {k: v for k, v in self.pending.items() if k > self.last_tick}
        if self.pending and self.gap_since is None:
            self.gap_since = time.monotonic()
            self.next_resync = self.gap_since + GAP_WAIT
        elif not self.pending:
            self.gap_since = None

    def apply(self, t: dict) -> None:
        n = t["tick"]
        self.started = True
        self.last_tick = n
        self.hashes[n] = t["hash"]
        self.hashes.pop(n - 512, None)
        bits = (t["intents"] >> (2 * self.me)) & 3
        self.applied[n] = bits
        self.applied.pop(n - 512, None)
        if n > self.paddle_tick:
            self.paddle = self.moved(self.paddle, bits)
            self.paddle_tick = n
        ack = t["acks"][self.me]
        if ack != ACK_NONE:
            self.acked = max(self.acked, n + ack)
        self.ticks_seen += 1
        self.ticks_late += ack == ACK_NONE or ack < 0
        if t["forfeit"]:
            out = [f"P{s + 1}" for s in range(4) if t["forfeit"] >> s & 1]
            log(self.who, f"tick {n}: {', '.join(out)} forfeit")
        if self.args.drop_link_at_tick and n >= self.args.drop_link_at_tick and not self.dropped:
            self.dropped = True
            log(self.who, f"dropping the link at tick {n}, as asked")
            self.close()

    def moved(self, pos: int, bits: int) -> int:
        step = {0: 0, 1: -1, 2: 1}.get(bits, 0) * self.arena.paddle_speed
        return self.arena.clamp_paddle(self.side, pos + step)

    def on_keyframe(self, k: dict) -> None:
        state = k["state"]
        n = state["tick"]
        own = state_hash(state)
        if n in self.hashes:
            self.keyframes_checked += 1
        if n in self.hashes and self.hashes[n] != own:
            self.desyncs += 1
            log(self.who, f"keyframe of tick {n} hashes {own:016x}, its tick said "
                f"{self.hashes[n]:016x}")
        if self.over is not None and n == self.over["tick"]:
            self.final_keyframe = state
        self.keyframe = state
        if n > self.last_tick:
            # Ahead of what we hold: it replaces the ticks in between.
            self.last_tick = n
            self.hashes[n] = own
            self.pending = {t: v for t, v in self.pending.items() if t > n}
            while self.last_tick + 1 in self.pending:
                self.apply(self.pending.pop(self.last_tick + 1))
            if not self.pending:
                self.gap_since = None
        # Our paddle: the keyframe's, moved by the intents applied since.
        pos = state["paddles"][self.me]
        for t in range(n + 1, self.last_tick + 1):
            pos = self.moved(pos, self.applied.get(t, 0))
        self.paddle, self.paddle_tick = pos, self.last_tick

    # -- play --------------------------------------------------------------------------

    def due_tick(self, server_time: int) -> int:
        """The last tick due at or before `server_time`, after the last StartAt."""
        tick, at = self.anchor
        if server_time < at:
            return tick - 1
        return tick + (server_time - at) * self.config["tick_hz"] // 1_000_000

    def tick_time(self, n: int) -> int:
        tick, at = self.anchor
        hz = self.config["tick_hz"]
        return at + -(-(n - tick) * 1_000_000 // hz)

    def lead(self) -> int:
        """How far ahead of the server's clock intents are sent, µs."""
        period = 1_000_000 // self.config["tick_hz"]
        return self.rtt() // 2 + max(period, 8000)

    def decide(self, tick: int) -> str:
        """Toward where the ball will cross our side, from the last keyframe."""
        a = self.arena
        pos = self.paddle
        for t in range(self.paddle_tick + 1, tick):
            pos = self.moved(pos, INTENT_BITS[self.decided.get(t, "Stop")])
        lo, hi = a.paddle_range(self.side)
        target = (lo + hi) // 2
        k = self.keyframe
        toward = False
        if k is not None and k["ball"][0] == "Moving":
            b = k["ball"][1]
            # Along our paddle (lateral) and toward our goal (depth); the far side is taken
            # for a mirror, and so are the ends of our side.
            if self.side in ("Left", "Right"):
                lat, vlat, depth, vdepth = b["y"], b["vy"], b["x"], b["vx"]
                span, deep = a.height, a.width
            else:
                lat, vlat, depth, vdepth = b["x"], b["vx"], b["y"], b["vy"]
                span, deep = a.width, a.height
            front = a.inset + a.paddle_thick
            back = deep - a.inset - a.paddle_thick - a.ball
            dt = tick - k["tick"]
            depth, vdepth = fold(depth + vdepth * dt, vdepth, front, back)
            lat, vlat = fold(lat + vlat * dt, vlat, 0, span - a.ball)
            near = self.side in ("Left", "Top")
            toward = vdepth < 0 if near else vdepth > 0
            if toward:
                if not self.approaching:
                    self.new_approach()
                eta = (depth - front) / -vdepth if near else (back - depth) / vdepth
                cross, _ = fold(lat + vlat * eta, vlat, 0, span - a.ball)
                target = int(cross + a.ball / 2 - a.paddle_len / 2 + self.aim)
        self.approaching = toward
        target = max(lo, min(hi, target))
        if pos < target - a.paddle_speed // 2:
            return "Plus"
        if pos > target + a.paddle_speed // 2:
            return "Minus"
        return "Stop"

    def new_approach(self) -> None:
        """The ball turned toward us: where on the paddle to take it, or (one time in
        1 / (1 - skill)) where to miss it by a paddle's length, so that no rally lasts for
        ever."""
        a = self.arena
        reach = (a.paddle_len + a.ball) // 2
        if self.rng.random() >= self.args.skill:
            self.aim = self.rng.choice((-1, 1)) * (reach + a.paddle_len // 2)
        else:
            self.aim = int(self.rng.uniform(-0.7, 0.7) * reach)

    def play(self) -> None:
        """Decides the intents of the ticks now due (plus the lead) and sends the ones the
        server has not acknowledged."""
        if self.anchor is None or not self.samples:
            return
        target = self.due_tick(self.server_now() + self.lead())
        if target <= self.decided_upto:
            return
        for t in range(self.decided_upto + 1, target + 1):
            self.decided[t] = self.decide(t)
        self.decided_upto = target
        first = max(self.acked + 1, target - MAX_RUN + 1, self.anchor[0] if not self.started else 1)
        first = max(first, min(self.decided))
        if first > target:
            return
        run = [self.decided.get(t, "Stop") for t in range(first, target + 1)]
        self.send_signed(("Input", {"first_tick": first, "intents": pack_intents(run)}))
        for t in [t for t in self.decided if t < target - 600]:
            del self.decided[t]

    def next_play_wake(self) -> float:
        """Monotonic time when the next tick's intent is due to be decided."""
        if self.anchor is None or not self.samples:
            return time.monotonic() + 0.05
        due = self.tick_time(self.decided_upto + 1) - self.lead()
        return time.monotonic() + max(0, due - self.server_now()) / 1e6

    # -- the loop ----------------------------------------------------------------------

    def handle(self, frame: bytes) -> None:
        try:
            msg = decode_server(frame)
        except DecodeError as e:
            log(self.who, f"ignored a frame that does not decode ({e}): {hex_of(frame[:32])}")
            return
        name, m = (msg, None) if isinstance(msg, str) else msg
        if name == "Welcome":
            self.on_welcome(m)
        elif name == "Challenge":
            if m["session"] == self.session and self.phase == "resuming":
                self.seq = max(self.seq, m["next_seq"])
                self.send_signed(("Prove", {"nonce": m["nonce"]}))
                self.new_link_check = True
        elif name == "Rejected":
            raise Failure(f"the server refused: {m}")
        elif name == "Closed":
            raise Failure(f"the server closed the link: {m}")
        elif self.session is None:
            return
        elif name == "Pong":
            self.on_pong(m)
        elif name == "Lobby":
            self.on_lobby(m)
        elif name == "StartAt":
            self.on_start_at(m)
        elif name == "Tick":
            self.on_tick(m)
        elif name == "Keyframe":
            self.on_keyframe(m)
        elif name == "Paused":
            self.on_paused(m)
        elif name == "MatchOver":
            if self.over is None:
                self.over = m
                self.phase = "over"
                log(self.who, f"match over at tick {m['tick']}, winner "
                    f"{'nobody' if m['winner'] is None else 'P%d' % (m['winner'] + 1)}")

    def timers(self) -> float:
        """Does what is due now; returns when to wake up next (monotonic)."""
        now = time.monotonic()
        wake = now + 0.2
        if self.phase == "joining":
            if now >= self.next_retry:
                a = self.args
                join = {"name": a.name, "players": a.players, "room": a.room}
                self.send(open_frame(("Join", join)))
                self.next_retry = now + RETRY
            return min(wake, self.next_retry)
        if self.phase == "resuming":
            if now >= self.next_retry:
                self.send(open_frame(("Resume", {"session": self.session})))
                self.next_retry = now + RETRY
            return min(wake, self.next_retry)
        if now >= self.next_ping:
            self.ping()
            self.next_ping = now + (1.0 if self.phase == "playing" else 0.2)
        wake = min(wake, self.next_ping)
        if self.phase in ("lobby", "paused"):
            # Ready needs three clock samples, or one on a new link that agrees with the kept.
            wanted = 1 if self.kept_clock else 3
            enough = not self.new_link_check and len(self.samples) >= wanted
            asking = self.phase == "paused" or not self.ready_said
            if enough and asking and now >= self.next_retry:
                self.send_signed("Ready")
                self.next_retry = now + RETRY
            wake = min(wake, max(self.next_retry, now + 0.01))
        if self.phase in ("playing", "paused", "over") and self.gap_since is not None:
            if now >= self.next_resync:
                log(self.who, f"missing ticks after {self.last_tick}: resync")
                self.send_signed(("Resync", {"from_tick": self.last_tick + 1}))
                self.next_resync = now + RETRY
            wake = min(wake, self.next_resync)
        if self.phase == "playing":
            if now >= self.next_keyframe_ask and self.started:
                self.send_signed(("Resync", {"from_tick": 0}))
                self.next_keyframe_ask = now + KEYFRAME_EVERY
            self.play()
            wake = min(wake, self.next_play_wake())
            if self.started:
                wake = min(wake, self.next_keyframe_ask)
        return wake

    def run(self) -> dict:
        self.connect()
        finishing: float | None = None
        while True:
            now = time.monotonic()
            if now >= self.deadline:
                raise Failure(f"timed out after {self.args.timeout} s (phase {self.phase})")
            if self.phase == "over":
                if finishing is None:
                    finishing = now + 3.0
                if self.finished() or now >= finishing:
                    return self.report()
            if self.ws is None or now - self.last_heard > SERVER_SILENCE:
                if self.over is not None:
                    return self.report()  # with what it has: the link went after the end
                self.reconnect()
                continue
            wake = self.timers()
            if self.ws is None:
                continue
            timeout = max(0.0, min(wake, self.deadline) - time.monotonic())
            try:
                frame = self.ws.recv(timeout=timeout)
            except TimeoutError:
                continue
            except Exception as e:  # noqa: BLE001 - websockets' ConnectionClosed and OSError
                log(self.who, f"link lost: {e}")
                self.close()
                continue
            self.last_heard = time.monotonic()
            if isinstance(frame, str):
                log(self.who, "ignored a text message")
                continue
            self.handle(frame)

    def finished(self) -> bool:
        """At MatchOver: every tick up to the last one held, and the final keyframe."""
        if self.last_tick < self.over["tick"]:
            self.gap_since = self.gap_since or time.monotonic()
            return False
        if self.final_keyframe is None:
            now = time.monotonic()
            if now >= self.next_keyframe_ask:
                self.send_signed(("Resync", {"from_tick": 0}))
                self.next_keyframe_ask = now + KEYFRAME_EVERY
            return False
        return True

    def reconnect(self) -> None:
        self.close()
        if self.session is None:
            raise Failure("lost the link to the server before having a seat to resume")
        log(self.who, "server lost: reconnecting to resume")
        self.phase = "resuming"
        self.anchor = None
        self.kept_clock = False
        backoff = 0.1
        while True:
            if time.monotonic() + backoff >= self.deadline:
                raise Failure(f"timed out reconnecting after {self.args.timeout} s")
            try:
                self.connect()
                self.next_retry = 0.0
                return
            except Exception as e:  # noqa: BLE001 - any connect failure is retried
                log(self.who, f"cannot reconnect ({e}); retrying in {backoff:.1f} s")
                time.sleep(backoff)
                backoff = min(2 * backoff, 1.0)

    def report(self) -> dict:
        over = self.over
        if self.final_keyframe is not None:
            final = state_hash(self.final_keyframe)
        else:
            final = self.hashes.get(over["tick"], self.hashes.get(self.last_tick, 0))
            log(self.who, "no keyframe of the final state: reporting its tick's hash")
        try:
            self.send_signed("Leave")
        except Exception:  # noqa: BLE001 - the server may have closed the link already
            pass
        self.close()
        log(self.who, f"checked {self.keyframes_checked} keyframes against their ticks' hashes, "
            f"{self.desyncs} differed; {self.ticks_late} of the {self.ticks_seen} ticks had no "
            "intent of ours on time")
        reasons = {None: None, "NoLives": "no_lives", "Forfeit": "forfeit"}
        names = {s["player"]: s["name"] for s in over["standings"]}
        return {
            "match_id": self.match_id,
            "player_id": self.me,
            "name": names.get(self.me, self.args.name),
            "standings": [
                {
                    "player_id": s["player"],
                    "name": s["name"],
                    "lives": s["lives"],
                    "rank": s["rank"],
                    "out_tick": s["out_tick"],
                    "reason": reasons[s["reason"]],
                }
                for s in over["standings"]
            ],
            "winner": over["winner"],
            "final_hash": f"{final:016x}",
            "server_hash": f"{over['final_hash']:016x}",
            "ticks": over["tick"],
            "pauses": self.pauses,
            "desyncs": self.desyncs,
            "resumes": self.resumes,
        }


# --------------------------------------------------------------------------------------
# Self-test: every example frame of docs/protocol.md, both ways.
# --------------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
EXAMPLE_SESSION = 0x01020304
EXAMPLE_TOKEN = bytes(range(16))
EXAMPLE_HASH = 0x0011223344556677


def examples() -> dict[str, tuple]:
    """Each example of the document: (kind, message[, seq])."""
    config = {"players": 2, "lives": 5, "tick_hz": 60, "seed": 42}
    join = {"name": "Ada", "players": 2, "room": None}
    run = pack_intents(["Plus", "Plus", "Minus", "Stop", "Plus"])
    return {
        "Join Ada, 2 players": ("open", ("Join", join)),
        "Join Ada, 2 players, room friday": ("open", ("Join", {**join, "room": "friday"})),
        "Resume session 0x01020304": ("open", ("Resume", {"session": EXAMPLE_SESSION})),
        "seq 7: Ready": ("signed", "Ready", 7),
        "seq 8: Input from tick 1000: + + - 0 +":
            ("signed", ("Input", {"first_tick": 1000, "intents": run}), 8),
        "seq 9: Ping id 1 at 1000000":
            ("signed", ("Ping", {"id": 1, "client_time": 1_000_000}), 9),
        "seq 10: Resync from tick 1000": ("signed", ("Resync", {"from_tick": 1000}), 10),
        "seq 11: Prove 0x0123456789abcdef":
            ("signed", ("Prove", {"nonce": 0x0123456789ABCDEF}), 11),
        "seq 12: Leave": ("signed", "Leave", 12),
        "Welcome P1, left, match 1": ("server", ("Welcome", {
            "session": EXAMPLE_SESSION, "token": EXAMPLE_TOKEN, "match_id": 1, "player": 0,
            "side": "Left", "paddle": (600 - 96) // 2 * UNITS, "config": config,
            "resumed": False,
        })),
        "Challenge, next seq 13": ("server", ("Challenge", {
            "session": EXAMPLE_SESSION, "nonce": 0x0123456789ABCDEF, "next_seq": 13,
        })),
        "Rejected RoomFull": ("server", ("Rejected", "RoomFull")),
        "Pong id 1": ("server", ("Pong", {
            "id": 1, "client_time": 1_000_000, "server_time": 5_000_000,
        })),
        "Lobby of match 1: Ada, not ready": ("server", ("Lobby", {
            "match_id": 1, "epoch": 0, "room": None, "seats": 2,
            "members": [{"player": 0, "name": "Ada", "ready": False, "connected": True}],
        })),
        "StartAt epoch 1, tick 1": ("server", ("StartAt", {
            "epoch": 1, "tick": 1, "server_time": 8_000_000,
        })),
        "Tick 1000: P1 +, P2 -": ("server", ("Tick", {
            "tick": 1000, "intents": 2 | 1 << 2, "forfeit": 0, "acks": [0, -1, ACK_NONE, ACK_NONE],
            "hash": EXAMPLE_HASH,
        })),
        "Keyframe of a new 2-player match": ("server", ("Keyframe", new_match_keyframe())),
        "Paused at tick 1000, waiting for P2": ("server", ("Paused", {
            "epoch": 3, "tick": 1000, "lost": [{"player": 1, "deadline": 30_000_000}],
        })),
        "MatchOver at tick 4321, P1 wins": ("server", ("MatchOver", {
            "tick": 4321, "winner": 0, "final_hash": EXAMPLE_HASH, "standings": [
                {"player": 0, "name": "Ada", "lives": 2, "rank": 1, "out_tick": None,
                 "reason": None},
                {"player": 1, "name": "Bob", "lives": 0, "rank": 2, "out_tick": 4321,
                 "reason": "NoLives"},
            ],
        })),
        "Closed Idle": ("server", ("Closed", "Idle")),
    }


def new_match_keyframe() -> dict:
    """A new 2-player match: the ball resting 30 ticks, served toward P2; paddles centred."""
    return {
        "state": {
            "tick": 0,
            "ball": ("Resting", {"timer": 30, "toward": 1}),
            "paddles": [(600 - 96) // 2 * UNITS] * 2 + [(800 - 96) // 2 * UNITS] * 2,
            "lives": [5, 5, 0, 0],
        },
        "input": {"intents": ["Stop"] * 4, "forfeit": 0},
        "acks": [ACK_NONE] * 4,
    }


def doc_section(text: str, title: str) -> str:
    """The section of the document under `title`, or nothing."""
    start = text.find(title)
    if start < 0:
        return ""
    end = text.find("\n#", start + len(title))
    return text[start : end if end >= 0 else len(text)]


def self_test(doc_path: Path) -> int:
    failures: list[str] = []

    def check(what: str, ok: bool, detail: str = "") -> None:
        if not ok:
            failures.append(f"{what}: {detail}")

    # SipHash-2-4's reference vector (the paper's appendix A): key 00..0f, message 00..0e.
    check("siphash reference", siphash24(bytes(range(16)), bytes(range(15))) == 0xA129CA6149BE45E5)
    check("fnv reference", fnv1a64(b"foobar") == 0x85944171F73967E8)

    text = doc_path.read_text(encoding="utf-8")
    rows = re.findall(r"^\| (.+?) \| `([0-9a-f ]+)` \|$",
                      doc_section(text, "### Example frames"), re.M)
    known = examples()
    seen = set()
    for label, hexes in rows:
        frame = bytes.fromhex(hexes)
        seen.add(label)
        if label not in known:
            check(label, False, "an example of the document this test does not know")
            continue
        kind, msg, *seq = known[label]
        try:
            if kind == "open":
                made = open_frame(msg)
                back = decode_client(frame)
                check(label + " (decode)", back == ("open", msg), repr(back))
            elif kind == "signed":
                made = signed_frame(EXAMPLE_SESSION, seq[0], EXAMPLE_TOKEN, msg)
                back = decode_client(frame, EXAMPLE_TOKEN)
                check(label + " (decode)", back == ("signed", EXAMPLE_SESSION, seq[0], msg, True),
                      repr(back))
                forged = frame[:-1] + bytes([frame[-1] ^ 1])
                check(label + " (forged tag)", decode_client(forged, EXAMPLE_TOKEN)[4] is False)
            else:
                made = server_frame(msg)
                back = decode_server(frame)
                check(label + " (decode)", back == msg, repr(back))
            check(label + " (encode)", made == frame, f"made `{hex_of(made)}`")
        except (DecodeError, ValueError) as e:
            check(label, False, repr(e))
    for label in known:
        check(label, label in seen, "missing from the document's examples")

    # The state hash example.
    m = re.search(r"^\| Keyframe of a new 2-player match \| `([0-9a-f]{16})` \|$",
                  doc_section(text, "### The state hash"), re.M)
    state = new_match_keyframe()["state"]
    check("state hash example", m is not None and int(m.group(1), 16) == state_hash(state),
          f"the document has {m and m.group(1)}, computed {state_hash(state):016x}")

    # Bad frames are refused, never misread.
    for bad, why in [
        (b"", "empty"), (b"\x02\x0a\x05", "other version"), (b"\x03\x0b", "unknown kind"),
        (b"\x03\x02", "truncated"), (b"\x03\x0a\x05\x00", "trailing bytes"),
        (b"\x03\x06\xe8\x07\x03\x00\x00\xff\x80\x80" + bytes(8), "intent 3 in a tick"),
        (b"\x03\x05\x01\x01\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "varint too long"),
    ]:
        try:
            decode_server(bad)
            check(f"bad frame ({why})", False, "decoded")
        except DecodeError:
            pass
    for bad in (b"\xff", b"\x0f\xff", b"\xfc\xff", b"\x00\xff"):
        try:
            unpack_intents(bad)
            check(f"bad run {hex_of(bad)}", False, "decoded")
        except DecodeError:
            pass
    check("run round trip", unpack_intents(pack_intents(["Plus"] * 5)) == ["Plus"] * 5)

    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    print(f"self-test: {len(rows)} example frames of {doc_path}, "
          f"{'all agree' if not failures else f'{len(failures)} failures'}", file=sys.stderr)
    return 1 if failures else 0


# --------------------------------------------------------------------------------------


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="ws://127.0.0.1:7878", help="ws://HOST:PORT")
    p.add_argument("--name", default="py", help="1 to 20 characters")
    p.add_argument("--players", type=int, choices=(2, 3, 4), help="match size to ask for")
    p.add_argument("--room", help="play in this room")
    p.add_argument("--skill", type=float, default=0.7,
                   help="0 to 1: the share of balls it tries to reach (the rest it misses)")
    p.add_argument("--seed", type=int, default=1, help="varies where it aims and what it misses")
    p.add_argument("--timeout", type=float, default=120, help="give up after this many seconds")
    p.add_argument("--drop-link-at-tick", type=int, default=0, metavar="N",
                   help="close the link once at tick N, then resume the seat (a test of Resume)")
    p.add_argument("--self-test", action="store_true",
                   help="check every example frame of docs/protocol.md and exit")
    p.add_argument("--doc", type=Path, default=DOC, help="the protocol document (self-test)")
    args = p.parse_args()
    if args.self_test:
        return self_test(args.doc)
    player = Player(args)
    try:
        report = player.run()
    except Failure as e:
        log(player.who, f"error: {e}")
        player.close()
        return 1
    except OSError as e:
        log(player.who, f"error: cannot reach {args.server}: {e}")
        return 1
    print(json.dumps(report, separators=(",", ":")), flush=True)
    log(player.who, "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
