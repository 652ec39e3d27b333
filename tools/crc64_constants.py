"""Print the CRC-64/XZ tables and folding constants used in native/cl_crc64.c.

Run `python3 tools/crc64_constants.py` and compare with the C file; nothing
here runs at build time, the output is pasted in by hand.

Folding a 16-byte chunk D bits down the message uses
k_lo = reflect64(x^(D+63) mod P) and k_hi = reflect64(x^(D-1) mod P): the
exponents are one lower than the x^(D+64), x^D of the plain algebra because
PCLMULQDQ on bit-reflected operands returns the product times x.
"""

POLY = 0x42F0E1EBA9EA3693  # P = x^64 + POLY, CRC-64/XZ (ECMA-182)
MASK = (1 << 64) - 1


def reflect64(v):
    return int(format(v, "064b")[::-1], 2)


def xpow_mod(n):
    """x^n mod P over GF(2), as an integer whose bit i is the x^i term."""
    r = 1
    for _ in range(n):
        r <<= 1
        if r >> 64:
            r = (r & MASK) ^ POLY
    return r


def fold_pair(d):
    return reflect64(xpow_mod(d + 63)), reflect64(xpow_mod(d - 1))


def tables():
    """crc64_table[k][n]: register after byte n then k zero bytes, state 0."""
    rpoly = reflect64(POLY)
    t0 = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ (rpoly if c & 1 else 0)
        t0.append(c)
    rows = [t0]
    for _ in range(15):
        rows.append([(c >> 8) ^ t0[c & 0xFF] for c in rows[-1]])
    return rows


def main():
    print("static const uint64_t crc64_table[16][256] = {")
    for k, row in enumerate(tables()):
        print("    { /* %d */" % k)
        for i in range(0, 256, 4):
            print("        " + ", ".join("0x%016x" % v for v in row[i:i + 4]) + ",")
        print("    },")
    print("};\n")
    for name, unit, count in (("k128", 128, 8), ("k512", 512, 4)):
        print("static const uint64_t %s[%d][2] = {\n    {0, 0}," % (name, count + 1))
        for j in range(1, count + 1):
            print("    {0x%016x, 0x%016x}, /* D = %4d */" % (fold_pair(unit * j) + (unit * j,)))
        print("};\n")
    print("static const uint64_t k_first[3] = {")
    for q in range(3):
        d = 128 * (4 * q + 3)
        print("    0x%016x, /* D = %4d */" % (fold_pair(d)[0], d))
    print("};")


if __name__ == "__main__":
    main()
