"""The CRC of HJ 212 (its Annex A), which is not CRC-16/MODBUS."""

from __future__ import annotations


def _table() -> tuple[int, ...]:
    # The standard shifts the register right by 8 and XORs in the byte before the eight
    # polynomial steps, so the register holds one byte then: its eight steps are a table.
    out = []
    for low in range(256):
        c = low
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
        out.append(c)
    return tuple(out)


_TABLE = _table()


def crc16_bytewise(data: bytes) -> int:
    """HJ 212's CRC over the data segment, byte by byte as Annex A has it: start 0xFFFF, per
    byte `crc = (crc >> 8) ^ byte`, then eight right shifts with polynomial 0xA001."""
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc


# The same CRC without a Python loop over the bytes (a packet's two CRCs were the largest
# part of the gateway's CPU per packet). Only the register's high byte h carries over from
# one byte to the next: h' = M(h ^ byte), M = the table's high byte, which is linear over
# GF(2) and whose eighth power is the identity. So a byte's share of the result depends
# only on its distance from the end modulo 8: XOR-folding the segment, read as one integer
# (in C), leaves eight lane bytes, and M^j of lane j gives the register before the table's
# last lookup. Checked against crc16_bytewise in the tests.
def _powers() -> tuple[tuple[int, ...], ...]:
    high = [t >> 8 for t in _TABLE]
    out = [tuple(range(256))]
    for _ in range(7):
        out.append(tuple(high[v] for v in out[-1]))
    assert [high[v] for v in out[7]] == list(range(256)), "M^8 must be the identity"
    return tuple(out)


_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7 = _powers()
# What the start value 0xFFFF (its high byte 0xFF) becomes after n - 1 steps, by (n - 1) mod 8.
_START = tuple(p[0xFF] for p in (_P0, _P1, _P2, _P3, _P4, _P5, _P6, _P7))


def crc16(data: bytes) -> int:
    """HJ 212's CRC over the data segment (the value crc16_bytewise gives, faster)."""
    n = len(data)
    if not n:
        return 0xFFFF
    # Big-endian: the last byte is the lowest, so byte k from the end sits in lane k % 8.
    v = int.from_bytes(data, "big")
    half = 1 << (((n + 7) >> 3) - 1).bit_length()  # 64-bit words, rounded up to 2^k
    while half > 1:
        half >>= 1
        bits = half << 6
        v = (v >> bits) ^ (v & ((1 << bits) - 1))
    return _TABLE[
        _START[(n - 1) & 7]
        ^ _P0[v & 255]
        ^ _P1[v >> 8 & 255]
        ^ _P2[v >> 16 & 255]
        ^ _P3[v >> 24 & 255]
        ^ _P4[v >> 32 & 255]
        ^ _P5[v >> 40 & 255]
        ^ _P6[v >> 48 & 255]
        ^ _P7[v >> 56]
    ]
