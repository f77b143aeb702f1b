"""Byte streams for the readers: gzip that keeps the good prefix of a truncated file, and line
endings (LF, CRLF, bare CR) and a UTF-8 byte-order mark handled the same for every format.

`gzip.GzipFile` raises EOFError on a truncated file and loses what it decompressed in that read;
`GunzipStream` instead ends the stream where the data ends and says why in `.error`, so a reader
keeps every complete line before the damage and quarantines the rest with a reason.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path
from typing import BinaryIO

BOM = b"\xef\xbb\xbf"
_IN_BYTES = 1 << 18  # compressed bytes fed per step


class GunzipStream(io.RawIOBase):
    """Decompress gzip members one after another; a truncated or corrupt tail ends the stream."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self._d = zlib.decompressobj(31)
        self._buf = b""
        self._pos = 0
        self._member_started = False
        self._done = False
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while self._pos >= len(self._buf) and not self._done:
            data = self._d.unconsumed_tail or self.raw.read(_IN_BYTES)
            if not data:
                if self._member_started:
                    self.error = "truncated gzip: the compressed data ends before the end of the stream"
                self._done = True
                return
            self._member_started = True
            try:
                self._buf, self._pos = self._d.decompress(data, 1 << 22), 0
            except zlib.error as exc:
                self.error = f"corrupt gzip data ({exc})"
                self._done = True
                return
            if self._d.eof:  # a member ended: the next one (if any) starts in unused_data
                rest = self._d.unused_data.lstrip(b"\x00")
                self._d = zlib.decompressobj(31)
                self._member_started = False
                if rest:
                    self.raw = _Prefixed(rest, self.raw)

    def readinto(self, b) -> int:
        self._fill()
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


class _Prefixed:
    """A file object with some bytes put back in front of it."""

    def __init__(self, head: bytes, raw: BinaryIO):
        self.head, self.raw = head, raw

    def read(self, n: int) -> bytes:
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.raw.read(n)


class ZstdStream(io.RawIOBase):
    """Decompress zstd frames one after another (the `zstandard` library's streaming object keeps
    every byte it could decompress); a truncated or corrupt tail ends the stream with the reason
    in `.error`, like GunzipStream. (pyarrow's zstd stream loses the whole read that hits the
    damage: a small truncated file gave no rows at all.)"""

    def __init__(self, raw: BinaryIO):
        import zstandard

        self._zstd = zstandard
        self.raw = raw
        self._d = zstandard.ZstdDecompressor().decompressobj()
        self._buf = b""
        self._pos = 0
        self._started = False
        self._done = False
        self.error: str | None = None

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while self._pos >= len(self._buf) and not self._done:
            data = self.raw.read(_IN_BYTES)
            if not data:
                if self._started and not self._d.eof:
                    self.error = "truncated zstd: the compressed data ends before the end of the frame"
                self._done = True
                return
            self._started = True
            try:
                self._buf, self._pos = self._d.decompress(data), 0
            except self._zstd.ZstdError as exc:
                self.error = f"corrupt zstd data ({exc})"
                self._done = True
                return
            if self._d.eof:  # a frame ended: the next one (if any) starts in unused_data
                rest = self._d.unused_data
                self._d = self._zstd.ZstdDecompressor().decompressobj()
                self._started = False
                if rest:
                    self.raw = _Prefixed(rest, self.raw)

    def readinto(self, b) -> int:
        self._fill()
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


def open_bytes(raw_fh: BinaryIO, comp: str | bool | None) -> BinaryIO:
    """The file's content as a buffered byte stream, decompressed by `comp` ("gzip" or "zstd";
    a true value means gzip)."""
    if not comp:
        return raw_fh
    return io.BufferedReader(ZstdStream(raw_fh) if comp == "zstd" else GunzipStream(raw_fh), 1 << 20)


def stream_error(fh: BinaryIO) -> str | None:
    """Why a stream from `open_bytes` ended early (None when it ended cleanly)."""
    raw = getattr(fh, "raw", None)
    return raw.error if isinstance(raw, (GunzipStream, ZstdStream)) else None


def lf_lines(block: bytes, carry: bytes) -> tuple[bytes, bytes]:
    """Make LF the only line end in `carry + block`; return (converted, new carry).

    A bare CR cannot occur inside a JSON string (it must be escaped), so in JSON lines it is a
    line end; CRLF stays as it is (JSON ignores the CR) unless the block also has bare CRs. A CR
    at the very end waits for the next block, which may start with its LF.
    """
    data = carry + block
    carry = b""
    if data.endswith(b"\r"):
        data, carry = data[:-1], b"\r"
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data, carry


def strip_bom(block: bytes) -> bytes:
    return block.removeprefix(BOM)


def head_bytes(path: Path, gz: bool, n: int = 1 << 20) -> bytes:
    """Up to `n` bytes of the (decompressed) content, for checks before anything is written."""
    with open(path, "rb") as raw_fh:
        fh = open_bytes(raw_fh, gz)
        return strip_bom(fh.read(n))
