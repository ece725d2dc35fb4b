#!/usr/bin/env python3
"""Writes seed inputs for the fuzzers into CORPUS/<target> (the ELF loader's seed is the
probe, which tests/run copies)."""
import bz2
import gzip
import lzma
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


def tiny_elf():
    """An x86-64 ELF header and nothing else: enough for the unpacker's final check."""
    return struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, 62, 1,
                       0x100000, 64, 0, 0, 64, 56, 0, 0, 0, 0) + bytes(64)


def with_payload(payload):
    """A bzImage whose setup header points at payload (boot protocol 2.08+ fields)."""
    img = bytearray(bzimage()[:1024]) + payload + struct.pack("<I", len(tiny_elf()))
    struct.pack_into("<II", img, 0x248, 0, len(payload))
    return bytes(img)


corpus = sys.argv[1]
for d in ("fuzz_bzimage", "fuzz_unpack", "fuzz_config_file", "fuzz_api"):
    os.makedirs(os.path.join(corpus, d), exist_ok=True)
with open(os.path.join(corpus, "fuzz_bzimage", "minimal"), "wb") as f:
    f.write(bzimage())
elf = tiny_elf()
for name, payload in (("gzip", gzip.compress(elf)), ("bzip2", bz2.compress(elf)),
                      ("xz", lzma.compress(elf, check=lzma.CHECK_CRC32)),
                      ("lzma", lzma.compress(elf, format=lzma.FORMAT_ALONE))):
    with open(os.path.join(corpus, "fuzz_unpack", name), "wb") as f:
        f.write(with_payload(payload))
with open(os.path.join(corpus, "fuzz_config_file", "full"), "w") as f:
    f.write('{"boot-source": {"kernel_image_path": "/k", "boot_args": "a"},'
            ' "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": false},'
            ' "drives": [{"drive_id": "rootfs", "path_on_host": "/d", "is_root_device": true}],'
            ' "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0"}],'
            ' "entropy": {}}')
# fuzz_api: method index (0 GET, 1 PUT, 2 PATCH), path, newline, body.
API_SEEDS = {
    "boot_source": b'\x01/boot-source\n{"kernel_image_path": "/k", "boot_args": "x"}',
    "machine": b'\x02/machine-config\n{"vcpu_count": 2, "huge_pages": "2M"}',
    "drive": b'\x01/drives/rootfs\n{"drive_id": "rootfs", "path_on_host": "/d",'
             b' "is_root_device": true, "is_read_only": false}',
    "net": b'\x01/network-interfaces/eth0\n{"iface_id": "eth0", "user_net":'
           b' {"hostfwd": ["tcp::2222-:22"]}, "guest_mac": "02:00:00:00:00:01"}',
    "start": b'\x01/actions\n{"action_type": "InstanceStart"}',
    "vm": b'\x02/vm\n{"state": "Paused"}',
    "config": b'\x00/vm/config\n',
}
for name, seed in API_SEEDS.items():
    with open(os.path.join(corpus, "fuzz_api", name), "wb") as f:
        f.write(seed)

# fuzz_snapshot: a valid snapshot header and configuration section, then one vCPU section's
# start, as skiff writes them (state/snapshot.h, state/state.h).
def section(tag, version, payload):
    return tag + struct.pack("<HI", version, len(payload)) + payload


def snapshot_seed():
    import zlib
    config = b'{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}, "drives": [],' \
             b' "network-interfaces": []}'
    state = section(b"CONF", 1, struct.pack("<I", len(config)) + config + b"\0")
    state += section(b"VCPU", 1, bytes(16))
    head = bytearray(64)
    head[0:8] = b"SKIFFSNP"
    struct.pack_into("<IIQQII", head, 8, 1, 1, 64 << 20, len(state), zlib.crc32(state), 0)
    head[44:49] = b"0.1.0"
    struct.pack_into("<I", head, 60, zlib.crc32(bytes(head[:60])))
    return bytes(head) + state


os.makedirs(os.path.join(corpus, "fuzz_snapshot"), exist_ok=True)
with open(os.path.join(corpus, "fuzz_snapshot", "minimal"), "wb") as f:
    f.write(snapshot_seed())


# fuzz_migrate: a stream of frames (type, length, CRC32, sequence) as migrate/stream.c sends.
def frames(*messages):
    import zlib
    out = b""
    for seq, (kind, payload) in enumerate(messages):
        out += struct.pack("<IIII", kind, len(payload), zlib.crc32(payload), seq) + payload
    return out


RAM, ZERO, DISK, STATE, DONE = 4, 5, 6, 7, 8
os.makedirs(os.path.join(corpus, "fuzz_migrate"), exist_ok=True)
with open(os.path.join(corpus, "fuzz_migrate", "stream"), "wb") as f:
    f.write(frames((RAM, struct.pack("<Q", 4096) + bytes(range(256)) * 16),
                   (ZERO, struct.pack("<QQ", 8192, 2)),
                   (DISK, struct.pack("<IIQ", 0, 0, 512) + b"d" * 512),
                   (STATE, b"CONF"), (DONE, struct.pack("<I", 0))))
