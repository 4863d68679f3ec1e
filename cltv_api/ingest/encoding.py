"""Text-encoding detection on a byte sample, and streaming transcoding to UTF-8.

Detection order (never a silent guess):
1. a byte-order mark: UTF-8, UTF-16 LE/BE (UTF-32 is refused);
2. UTF-16 without a BOM when every other byte of the sample is NUL;
3. NUL bytes otherwise mean a binary file;
4. valid UTF-8;
5. Windows-1251 when the non-ASCII bytes decode to Cyrillic letters (Russian Excel exports);
6. otherwise the caller must pass ``encoding``.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from cltv_api.errors import InvalidInput

CHUNK_BYTES = 1 << 20

_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r", "\f"} | {"\x7f"}
# Punctuation Russian texts typically carry in cp1251's upper half: NBSP, «», №, dashes, quotes.
_CP1251_PUNCT = set("\u00a0«»№–—“”„‘’…°±")


@dataclass(frozen=True)
class EncodingGuess:
    """A detected encoding: ``name`` is the Python codec, ``bom`` the byte-order mark length."""

    name: str
    bom: int = 0

    @property
    def is_utf8(self) -> bool:
        return codecs.lookup(self.name).name in ("utf-8", "utf-8-sig")


def detect_encoding(sample: bytes) -> EncodingGuess:
    """Detect the encoding of a text file from its first bytes (see the module docstring)."""
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise InvalidInput("UTF-32 text is not supported; save the file as UTF-8 or UTF-16")
    if sample.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig", 3)
    if sample.startswith(codecs.BOM_UTF16_LE):
        return EncodingGuess("utf-16-le", 2)
    if sample.startswith(codecs.BOM_UTF16_BE):
        return EncodingGuess("utf-16-be", 2)
    bomless16 = _bomless_utf16(sample)
    if bomless16:
        return EncodingGuess(bomless16)
    if b"\x00" in sample or _control_bytes(sample) > max(2, len(sample[:65536]) // 1000):
        raise InvalidInput(_binary_message())
    if _valid_utf8_prefix(sample):
        return EncodingGuess("utf-8")
    if _looks_cp1251(sample):
        return EncodingGuess("cp1251")
    raise InvalidInput(
        "Could not determine the text encoding: the file is neither UTF-8 nor Cyrillic "
        "Windows-1251. Pass encoding=... (e.g. 'latin-1') or save the file as UTF-8."
    )


def decode_sample(sample: bytes, guess: EncodingGuess, *, complete: bool) -> str:
    """Decode a byte sample; an incomplete sample may end inside a character."""
    decoder = codecs.getincrementaldecoder(guess.name)(errors="strict")
    try:
        text = decoder.decode(sample[guess.bom :], final=complete)
    except UnicodeError as exc:
        raise _not_text(guess, exc, guess.bom) from exc
    text = text.removeprefix("\ufeff")
    check_not_binary(text)
    return text


def check_not_binary(text: str) -> None:
    """Raise InvalidInput when decoded text is full of control characters (binary data)."""
    if not text:
        return
    head = text[:65536]
    controls = sum(1 for ch in head if ch in _CONTROL)
    if controls > max(2, len(head) // 1000):
        raise InvalidInput(_binary_message())


def transcode_to_utf8(src: Path, dst: Path, guess: EncodingGuess) -> None:
    """Stream ``src`` (in ``guess`` encoding) into ``dst`` as UTF-8, one chunk at a time."""
    decoder = codecs.getincrementaldecoder(guess.name)(errors="strict")
    chunk_start = guess.bom
    try:
        with src.open("rb") as fin, dst.open("wb") as fout:
            fin.seek(guess.bom)
            while chunk := fin.read(CHUNK_BYTES):
                fout.write(decoder.decode(chunk).encode("utf-8"))
                chunk_start += len(chunk)
            fout.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeError as exc:
        raise _not_text(guess, exc, chunk_start) from exc


def _not_text(guess: EncodingGuess, exc: UnicodeError, offset: int) -> InvalidInput:
    """The problem for bytes the encoding cannot decode. Codecs also raise a bare UnicodeError
    (``utf-16`` without a byte-order mark), which has no position."""
    if isinstance(exc, UnicodeDecodeError):
        where, reason = f" near byte {offset + exc.start}", exc.reason
    else:
        where, reason = "", str(exc)
    return InvalidInput(
        f"The file is not valid {guess.name} text{where} ({reason}); pass the right encoding=..."
    )


def _bomless_utf16(sample: bytes) -> str | None:
    head = sample[:4096]
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    even_nul = even.count(0) / len(even)
    odd_nul = odd.count(0) / len(odd)
    if odd_nul > 0.9 and even_nul < 0.1:
        return "utf-16-le"
    if even_nul > 0.9 and odd_nul < 0.1:
        return "utf-16-be"
    return None


def _control_bytes(sample: bytes) -> int:
    head = sample[:65536]
    return sum(head.count(bytes([c])) for c in range(32) if c not in (9, 10, 12, 13)) + head.count(
        b"\x7f"
    )


def _valid_utf8_prefix(sample: bytes) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _looks_cp1251(sample: bytes) -> bool:
    """Cyrillic cp1251 text: high bytes are mostly Cyrillic letters *in words* (runs).

    Latin-1 text such as ``Müller`` also decodes to Cyrillic letters in cp1251, but its
    accented letters stand alone between ASCII letters; Russian words are runs of them.
    """
    head = sample[: 1 << 18]
    high = [i for i, b in enumerate(head) if b >= 0x80]
    if not high:
        return False
    try:
        text = bytes(head[i] for i in high).decode("cp1251")
    except UnicodeDecodeError:
        return False
    cyrillic = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff" or ch in _CP1251_PUNCT)
    positions = set(high)
    in_runs = sum(1 for i in high if i - 1 in positions or i + 1 in positions)
    return cyrillic / len(high) >= 0.8 and in_runs / len(high) >= 0.5


def _binary_message() -> str:
    return (
        "The file looks binary, not a text CSV: expected CSV/TSV text, an Excel .xlsx "
        "workbook or a Parquet file."
    )
