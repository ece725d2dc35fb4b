#!/usr/bin/env python3
"""Writes seed inputs for the loader fuzzers into CORPUS/fuzz_bzimage (the ELF seed is the probe)."""
import os
import struct
import sys


def bzimage():
    img = bytearray(1024 + 4096)
    img[0x1f1] = 1                                   # setup_sects
    struct.pack_into("<H", img, 0x1fe, 0xaa55)
    img[0x201] = 0x6a                                # header ends at 0x26c
    struct.pack_into("<I", img, 0x202, 0x53726448)   # "HdrS"
    struct.pack_into("<H", img, 0x206, 0x20f)
    img[0x211] = 0x01                                # LOADED_HIGH
    struct.pack_into("<I", img, 0x22c, 0x7fffffff)
    struct.pack_into("<I", img, 0x230, 0x200000)
    img[0x234] = 1
    struct.pack_into("<H", img, 0x236, 0x1)          # XLF_KERNEL_64
    struct.pack_into("<I", img, 0x238, 2047)
    struct.pack_into("<Q", img, 0x258, 0x1000000)
    struct.pack_into("<I", img, 0x260, 0x10000)
    return bytes(img)


corpus = sys.argv[1]
os.makedirs(os.path.join(corpus, "fuzz_bzimage"), exist_ok=True)
with open(os.path.join(corpus, "fuzz_bzimage", "minimal"), "wb") as f:
    f.write(bzimage())
