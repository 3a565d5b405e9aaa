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


def crc16(data: bytes) -> int:
    """HJ 212's CRC over the data segment: start 0xFFFF, per byte `crc = (crc >> 8) ^ byte`,
    then eight right shifts with polynomial 0xA001."""
    crc = 0xFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc >> 8) ^ byte]
    return crc
