"""Byte streams for the readers: gzip and zstd that keep the good prefix of a truncated file, and line
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


class _MemberStream(io.RawIOBase):
    """Decompress members (gzip) or frames (zstd) one after another, keeping every byte that
    could be decompressed; a truncated or corrupt tail ends the stream with the reason in
    `.error`. Subclasses say how to make a decompressor and what its errors are."""

    kind = ""
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self._d = self._new()
        self._buf = b""
        self._pos = 0
        self._started = False
        self._done = False
        self.error: str | None = None

    def _new(self):
        raise NotImplementedError

    def _pending(self) -> bytes:
        """Compressed bytes the decompressor took but has not used yet (fed again first)."""
        return b""

    def _decompress(self, data: bytes) -> bytes:
        return self._d.decompress(data)

    def _rest(self) -> bytes:
        """What follows the member that just ended: the start of the next one."""
        return self._d.unused_data

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while self._pos >= len(self._buf) and not self._done:
            data = self._pending() or self.raw.read(_IN_BYTES)
            if not data:
                if self._started:
                    self.error = f"truncated {self.kind}: the compressed data ends before the end of the stream"
                self._done = True
                return
            self._started = True
            try:
                self._buf, self._pos = self._decompress(data), 0
            except self.errors as exc:
                self.error = f"corrupt {self.kind} data ({exc})"
                self._done = True
                return
            if self._d.eof:  # a member ended: the next one (if any) starts in what is left
                rest = self._rest()
                self._d = self._new()
                self._started = False
                if rest:
                    self.raw = _Prefixed(rest, self.raw)

    def readinto(self, b) -> int:
        self._fill()
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n


class GunzipStream(_MemberStream):
    """gzip members (`gzip.GzipFile` raises EOFError on a truncated file and loses that read)."""

    kind, errors = "gzip", (zlib.error,)

    def _new(self):
        return zlib.decompressobj(31)

    def _pending(self) -> bytes:
        return self._d.unconsumed_tail

    def _decompress(self, data: bytes) -> bytes:
        return self._d.decompress(data, 1 << 22)

    def _rest(self) -> bytes:
        return self._d.unused_data.lstrip(b"\x00")


class ZstdStream(_MemberStream):
    """zstd frames through the `zstandard` library's streaming object (pyarrow's zstd stream loses
    the whole read that hits the damage: a small truncated file gave no rows at all)."""

    kind = "zstd"

    def __init__(self, raw: BinaryIO):
        import zstandard

        self._zstd = zstandard
        self.errors = (zstandard.ZstdError,)
        super().__init__(raw)

    def _new(self):
        return self._zstd.ZstdDecompressor().decompressobj()


class _Prefixed:
    """A file object with some bytes put back in front of it."""

    def __init__(self, head: bytes, raw: BinaryIO):
        self.head, self.raw = head, raw

    def read(self, n: int) -> bytes:
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.raw.read(n)


def open_bytes(raw_fh: BinaryIO, comp: str | bool | None) -> BinaryIO:
    """The file's content as a buffered byte stream, decompressed by `comp` ("gzip" or "zstd";
    a true value means gzip)."""
    if not comp:
        return raw_fh
    return io.BufferedReader(ZstdStream(raw_fh) if comp == "zstd" else GunzipStream(raw_fh), 1 << 20)


def stream_error(fh: BinaryIO) -> str | None:
    """Why a stream from `open_bytes` ended early (None when it ended cleanly)."""
    raw = getattr(fh, "raw", None)
    return raw.error if isinstance(raw, _MemberStream) else None


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
