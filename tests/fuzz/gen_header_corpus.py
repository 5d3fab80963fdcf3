#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
#
# Writes the seed corpus of fuzz_header (tests/fuzz/corpus/header/) from the
# byte layout in src/layout.h. Names say what the validator must answer for
# the seed taken as a whole segment file (checked by the replay test):
# ok-* accepted, proto-* -EPROTO, badmsg-* -EBADMSG; seed-* are short images
# for the path that pads an image to the size its header declares.
import os
import random
import re
import struct
import sys



def layout_constants():
    """The #define'd numbers of src/layout.h, so seeds follow the format."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, '..', '..', 'src', 'layout.h')
    found = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'#define SHMKIT_(\w+)\s+(0x[0-9a-fA-F]+|\d+)[uUlL]*\b',
                         line)
            if m:
                found[m.group(1)] = int(m.group(2), 0)
    return found


K = layout_constants()
MAGIC = K['MAGIC']
VERSION = K['LAYOUT_VERSION']
HDR_SIZE = K['HDR_SIZE']
PAGE = K['PAGE']
READY = K['INIT_READY']
BUILDING = K['INIT_BUILDING']
SLOT_OFF = 0x80
DIR_OFF = 0x480
NSLOTS = 64
DIR_CAP = 64
NAMED, ANON, MEMFD, FILE = 1, 2, 3, 4
SCOPED = 0x1


def header(total=HDR_SIZE + PAGE, kind=NAMED, flags=0, state=READY,
           version=VERSION, magic=MAGIC, hdr_size=HDR_SIZE, data_off=HDR_SIZE,
           data_size=None, slot_cap=NSLOTS, dir_cap=DIR_CAP):
    if data_size is None:
        data_size = total - HDR_SIZE
    h = struct.pack('<QIIQIIiIQQQIIII', magic, version, hdr_size, total,
                    (kind << 8) | flags, 1000, 4242, state,
                    1700000000000000000, data_off, data_size,
                    SLOT_OFF, slot_cap, DIR_OFF, dir_cap)
    return h + bytes(SLOT_OFF - len(h))


def image(total=HDR_SIZE + PAGE, **kw):
    """A whole segment file: header, zeroed slots and directory, data."""
    h = header(total=total, **kw)
    return h + bytes(total - len(h))


def with_users_and_dir(img):
    b = bytearray(img)
    for i in (0, 5, 63):  # slots: pid, uid, attach_ns
        struct.pack_into('<iIQ', b, SLOT_OFF + 16 * i, 100 + i, 1000, 1)
    for i in (0, 1, 63):  # dirents: state, kind, offset, size, name
        struct.pack_into('<IIQQ48s', b, DIR_OFF + 72 * i, 1, 7, 4096 * i,
                         64, b'object-%d' % i)
    return bytes(b)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'corpus', 'header')
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(1)
    full = image()
    seeds = {
        'ok-named': full,
        'ok-file-scoped': image(total=HDR_SIZE + 2 * PAGE, kind=FILE,
                                flags=SCOPED),
        'ok-memfd': image(kind=MEMFD),
        'ok-building': image(state=BUILDING, data_size=0),
        'ok-users-and-dir': with_users_and_dir(full),
        'proto-empty': b'',
        'proto-5-bytes': full[:5],
        'proto-wrong-magic': image(magic=MAGIC ^ 0x100),
        'proto-version-2': image(version=2),
        'proto-version-0': image(version=0),
        'proto-garbage': bytes(rnd.getrandbits(8) for _ in range(512)),
        'badmsg-magic-version-only': full[:12],
        'badmsg-half-header': full[:0x1680 // 2],
        'badmsg-data-area-cut': full[:HDR_SIZE],
        'badmsg-data-size-beyond': image(data_size=2 * PAGE),
        'badmsg-data-size-odd': image(data_size=100),
        'badmsg-unknown-flag': image(flags=0x2),
        'badmsg-kind-0': image(kind=0),
        'badmsg-init-state': image(state=0x12345678),
        'badmsg-hdr-size': image(hdr_size=PAGE),
        'badmsg-slot-cap': image(slot_cap=1000),
        'badmsg-dir-cap': image(dir_cap=0),
        'seed-short-named': header(),
        'seed-short-building': header(state=BUILDING),
        'seed-short-file-scoped': header(kind=FILE, flags=SCOPED,
                                         total=HDR_SIZE + 3 * PAGE),
    }
    for name, data in sorted(seeds.items()):
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


if __name__ == '__main__':
    main()
