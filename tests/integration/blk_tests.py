"""Integration tests of virtio-blk: the probe's blk tests against image files the host
checks independently, durability, locking and bad disks; blk-read under QEMU too."""
import os
import signal
import struct
import zlib

from harness import (Guest, check, expect_error, expect_pass, probe_lines, run, test,
                     TIMEOUT)
from virtio_tests import qemu_virtio_argv

PATTERN = 0x736b6966665f626b  # the probe's blk-rw pattern: word at offset o is o ^ PATTERN


def image(ctx, name, size, data=None):
    path = os.path.join(ctx.tmp, name)
    with open(path, "wb") as f:
        if data is not None:
            f.write(data)
    os.truncate(path, size)
    return path


def pattern_ok(path, start, length):
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read(length)
    words = struct.unpack(f"<{length // 8}Q", data)
    return all(w == (start + 8 * i) ^ PATTERN for i, w in enumerate(words))


def blk_boot(ctx, disk, cmdline, env=None, memory="256M"):
    return run(ctx.argv("--disk", disk, memory=memory, cmdline=cmdline), env=env)


def blk_rw_test(name, env):
    def fn(ctx):
        disk = image(ctx, f"rw-{name}.img", 8 << 20)
        status, out, err = blk_boot(ctx, disk, "test=blk-rw", env=env)
        lines = expect_pass(status, out, err, "blk-rw")
        check(f"probe: blk-rw bytes={8 << 20}" in lines, lines)
        check(pattern_ok(disk, 0, 8 << 20), "the file does not hold the pattern")
    fn.__name__ = f"blk_rw_{name}"
    return fn


test(blk_rw_test("io_uring", None))
test(blk_rw_test("sync", dict(os.environ, SKIFF_BLK_SYNC="1")))


@test
def blk_rw_range_leaves_the_rest(ctx):
    disk = image(ctx, "range.img", 4 << 20, b"\xaa" * (4 << 20))
    status, out, err = blk_boot(ctx, disk, "test=blk-rw blk_range=100:300")
    expect_pass(status, out, err, "blk-rw")
    check(pattern_ok(disk, 100 * 512, 300 * 512), "range does not hold the pattern")
    with open(disk, "rb") as f:
        data = f.read()
    check(data[:100 * 512] == b"\xaa" * (100 * 512), "bytes before the range changed")
    check(data[400 * 512:] == b"\xaa" * (len(data) - 400 * 512), "bytes after it changed")


def blk_read_test(name, size):
    def fn(ctx):
        data = os.urandom(size)
        disk = image(ctx, f"read-{name}.img", size, data)
        status, out, err = blk_boot(ctx, disk, "test=blk-read")
        lines = expect_pass(status, out, err, "blk-read")
        visible = size // 512 * 512  # a partial last sector is not shown to the guest
        want = f"probe: blk-read bytes={visible} crc32={zlib.crc32(data[:visible]):08x}"
        check(want in lines, f"{want!r} not in {lines}")
    fn.__name__ = f"blk_read_crc_{name}"
    return fn


test(blk_read_test("aligned", 3 << 20))
test(blk_read_test("unaligned", (3 << 20) + 3583))


@test
def blk_read_same_as_qemu(ctx):
    size = 2 << 20
    disk = image(ctx, "cmp.img", size, os.urandom(size))
    argv = qemu_virtio_argv(ctx, "test=blk-read", [
        "-drive", f"id=d0,file={disk},format=raw,if=none,readonly=on",
        "-device", "virtio-blk-device,drive=d0"])
    qs, qout, qerr = run(argv, timeout=120)
    ss, sout, serr = blk_boot(ctx, disk + ",readonly", "test=blk-read")
    check(qs == 1 and ss == 1, f"exit statuses QEMU {qs} skiff {ss}: {qerr[:200]} {serr[:200]}")
    check(probe_lines(sout) == probe_lines(qout), f"{probe_lines(sout)} != {probe_lines(qout)}")


@test
def blk_id(ctx):
    disk = image(ctx, "id.img", 1 << 20)
    status, out, err = blk_boot(ctx, disk + ",id=probe-disk", "test=blk-id")
    lines = expect_pass(status, out, err, "blk-id")
    check("probe: blk-id id=probe-disk" in lines, lines)


@test
def blk_readonly_refuses_writes(ctx):
    disk = image(ctx, "ro.img", 1 << 20, b"\x55" * (1 << 20))
    os.chmod(disk, 0o444)  # read-only disks must not even need write access
    status, out, err = blk_boot(ctx, disk + ",readonly", "test=blk-ro")
    expect_pass(status, out, err, "blk-ro")
    with open(disk, "rb") as f:
        check(f.read() == b"\x55" * (1 << 20), "a read-only image changed")


@test
def blk_flushed_data_survives_sigkill(ctx):
    # The probe flushes, reads back and prints blk-rw; kill skiff at that line.
    disk = image(ctx, "kill.img", 4 << 20)
    g = Guest(ctx.argv("--disk", disk, memory="256M", cmdline="test=blk-rw"))
    try:
        check(g.wait_output("probe: blk-rw bytes="), g.text())
        g.signal(signal.SIGKILL)
        g.wait_exit()
    finally:
        g.kill()
    check(pattern_ok(disk, 0, 4 << 20), "flushed data is not in the file after SIGKILL")


@test
def blk_image_locked_against_second_writer(ctx):
    disk = image(ctx, "locked.img", 1 << 20)
    first = Guest(ctx.argv("--disk", disk, cmdline="test=echo"))
    try:
        check(first.wait_output("probe: echo ready"), first.text())
        expect_error(ctx, ctx.argv("--disk", disk), "in use by another process")
        # a second reader is refused too: the writer holds an exclusive lock
        expect_error(ctx, ctx.argv("--disk", disk + ",readonly"), "in use by another process")
    finally:
        first.kill()


@test
def blk_bad_disks(ctx):
    expect_error(ctx, ctx.argv("--disk", "/nonexistent/disk.img"), "/nonexistent/disk.img")
    expect_error(ctx, ctx.argv("--disk", ctx.tmp), "Is a directory")
    disk = image(ctx, "bad.img", 1 << 20)
    expect_error(ctx, ctx.argv("--disk", disk + ",bogus"), "bad option")
    expect_error(ctx, ctx.argv("--disk", disk + ",id=a", "--disk", disk + ",id=a"), "id=a")
    expect_error(ctx, ctx.argv("--disk", disk, "--disk", disk), "in use by another process")


@test
def blk_rw_under_qemu_writes_the_same_file(ctx):
    disks = [image(ctx, f"same-{vmm}.img", 4 << 20) for vmm in ("qemu", "skiff")]
    argv = qemu_virtio_argv(ctx, "test=blk-rw", [
        "-drive", f"id=d0,file={disks[0]},format=raw,if=none",
        "-device", "virtio-blk-device,drive=d0"])
    qs, qout, qerr = run(argv, timeout=120)
    ss, sout, serr = blk_boot(ctx, disks[1], "test=blk-rw")
    check(qs == 1 and ss == 1, f"exit statuses QEMU {qs} skiff {ss}: {qerr[:200]} {serr[:200]}")
    check(probe_lines(sout) == probe_lines(qout), f"{probe_lines(sout)} != {probe_lines(qout)}")
    with open(disks[0], "rb") as a, open(disks[1], "rb") as b:
        check(a.read() == b.read(), "QEMU's and skiff's images differ")
