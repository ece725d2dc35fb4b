"""Snapshot and restore: the probe's counter guest saved, then brought back in new skiffs."""
import hashlib
import os
import re
import socket
import struct
import subprocess
import time
import zlib

from harness import TIMEOUT, Guest, check, probe_lines, run
from api_tests import _started, boot_counter, expect, start, stop, test
from core_tests import counters


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def take_snapshot(ctx, *extra, name="snap"):
    """A counter guest run past a few lines, paused and snapshotted; returns its files and
    what it printed."""
    g, sock = boot_counter(ctx, "--cpus", "2", "--memory", "96M", *extra)
    check(g.wait_output("probe: counter=4 "), g.text())
    expect(sock, "PATCH", "/vm", {"state": "Paused"})
    snap = os.path.join(ctx.tmp, name + ".state")
    mem = os.path.join(ctx.tmp, name + ".mem")
    expect(sock, "PUT", "/snapshot/create", {"snapshot_path": snap, "mem_file_path": mem})
    g.wait_output("never printed", timeout=0.1)
    before = g.text()
    stop(g, sock)
    return snap, mem, before


def restored(ctx, snap, mem, *extra):
    g = Guest([ctx.skiff, "run", "--restore", snap, "--mem", mem, "--debug-exit", *extra])
    _started.append(g)
    return g


def expect_continues(g, before, more=3):
    """The restored guest's console goes on from before, what the original printed, line
    by line and in order (a line the pause cut in two is whole once the two are joined),
    and its memory pattern held."""
    want = counters(probe_lines(before))[-1] + 1 + more
    check(g.wait_output(f"probe: counter={want} "),
          f"the restored guest did not count to {want}: {g.text()!r} {g.errors()}")
    seen = counters(probe_lines(before + g.text()))
    check(seen == list(range(1, len(seen) + 1)), f"the counter went {seen}")
    check("result=fail" not in g.text(), g.text())


@test
def snapshot_restores_in_a_new_process(ctx):
    disk = ctx.file("snap-disk.img", bytes(1 << 20))
    snap, mem, before = take_snapshot(ctx, "--disk", disk, "--rng", "--net", "user")
    digests = digest(snap), digest(mem)
    g = restored(ctx, snap, mem)
    expect_continues(g, before)
    g.signal(15)
    check(g.wait_exit() == 128 + 15, g.errors())
    check((digest(snap), digest(mem)) == digests, "the restored VM wrote to its snapshot files")


@test
def snapshot_load_through_the_api(ctx):
    snap, mem, before = take_snapshot(ctx)
    g, sock = start(ctx, sock_name="load.sock")
    expect(sock, "PUT", "/snapshot/load", {"snapshot_path": snap,
                                           "mem_backend": {"backend_type": "File",
                                                           "backend_path": mem}})
    info, _ = expect(sock, "GET", "/", status=200)
    check(info["state"] == "Paused", info)
    g.wait_output("never printed", timeout=0.3)
    check(not counters(probe_lines(g.text())), f"a paused restore ran: {g.text()}")
    config, _ = expect(sock, "GET", "/vm/config", status=200)
    check(config["machine-config"]["vcpu_count"] == 2, config)
    expect(sock, "PATCH", "/vm", {"state": "Resumed"})
    expect_continues(g, before)
    stop(g, sock)


@test
def snapshot_clones_run_side_by_side(ctx):
    snap, mem, before = take_snapshot(ctx)
    a, b = restored(ctx, snap, mem), restored(ctx, snap, mem)
    expect_continues(a, before)
    expect_continues(b, before)
    for g in (a, b):
        g.signal(15)
        check(g.wait_exit() == 128 + 15, g.errors())


@test
def snapshot_needs_a_paused_vm(ctx):
    g, sock = boot_counter(ctx)
    expect(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(ctx.tmp, "x"),
                                             "mem_file_path": os.path.join(ctx.tmp, "y")},
           status=400)
    check(not os.path.exists(os.path.join(ctx.tmp, "x")), "a snapshot of a running VM")
    expect(sock, "PUT", "/snapshot/load", {"snapshot_path": "/s", "mem_file_path": "/m"},
           status=400)  # not on a started VM
    stop(g, sock)


def refuse(ctx, snap, mem, needle):
    status, out, err = run([ctx.skiff, "run", "--restore", snap, "--mem", mem], timeout=30)
    lines = [l for l in err.splitlines() if l.strip()]
    check(status == 2 and len(lines) == 1 and needle in lines[0],
          f"want one line with {needle!r}, exit 2; got {status} {lines}")
    check("probe:" not in out, out)


@test
def snapshot_damage_is_refused(ctx):
    snap, mem, _ = take_snapshot(ctx)
    data = open(snap, "rb").read()

    def variant(name, blob):
        return ctx.file(name, blob)

    refuse(ctx, variant("trunc.state", data[:len(data) // 2]), mem, "truncated")
    flipped = bytearray(data)
    flipped[len(data) - 10] ^= 1
    refuse(ctx, variant("flip.state", bytes(flipped)), mem, "corrupted")
    refuse(ctx, variant("magic.state", b"NOTASNAP" + data[8:]), mem, "not a skiff snapshot")
    newer = bytearray(data)
    struct.pack_into("<I", newer, 8, 99)
    struct.pack_into("<I", newer, 60, zlib.crc32(bytes(newer[:60])))
    refuse(ctx, variant("newer.state", bytes(newer)), mem, "format 99")
    cpus = bytearray(data)
    struct.pack_into("<I", cpus, 12, 3)
    struct.pack_into("<I", cpus, 60, zlib.crc32(bytes(cpus[:60])))
    refuse(ctx, variant("cpus.state", bytes(cpus)), mem, "3 vCPUs")
    memdata = open(mem, "rb").read()
    refuse(ctx, snap, variant("short.mem", memdata[:len(memdata) - 4096]), "truncated")
    damaged = bytearray(memdata)
    damaged[100] ^= 0xff  # the first page is always in the sample
    refuse(ctx, snap, variant("damaged.mem", bytes(damaged)), "memory file")
    refuse(ctx, "/nonexistent.state", mem, "No such file")


@test
def snapshot_full_then_diff_restores(ctx):
    g, sock = start(ctx, sock_name="diff.sock")
    expect(sock, "PUT", "/boot-source", {"kernel_image_path": ctx.probe,
                                         "boot_args": "test=counter"})
    expect(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64,
                                            "track_dirty_pages": True})
    expect(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    check(g.wait_output("probe: counter=3 "), g.text())
    expect(sock, "PATCH", "/vm", {"state": "Paused"})
    full, full_mem = (os.path.join(ctx.tmp, n) for n in ("full.state", "full.mem"))
    diff, diff_mem = (os.path.join(ctx.tmp, n) for n in ("diff.state", "diff.mem"))
    expect(sock, "PUT", "/snapshot/create", {"snapshot_path": diff, "mem_file_path": diff_mem,
                                             "snapshot_type": "Diff"}, status=400)  # no base
    expect(sock, "PUT", "/snapshot/create", {"snapshot_path": full, "mem_file_path": full_mem})
    expect(sock, "PATCH", "/vm", {"state": "Resumed"})
    g.wait_output("never printed", timeout=0.05)
    mark = counters(probe_lines(g.text()))[-1]
    check(g.wait_output(f"probe: counter={mark + 4} "), g.text())
    expect(sock, "PATCH", "/vm", {"state": "Paused"})
    expect(sock, "PUT", "/snapshot/create", {"snapshot_path": diff, "mem_file_path": diff_mem,
                                             "snapshot_type": "Diff"})
    g.wait_output("never printed", timeout=0.1)
    before = g.text()
    stop(g, sock)
    st = os.stat(diff_mem)
    check(st.st_blocks * 512 < st.st_size // 4, f"the diff is not sparse: {st.st_blocks * 512} "
          f"of {st.st_size} bytes")
    refuse(ctx, diff, diff_mem, "memory file")  # a diff alone is not RAM
    base = ctx.file("merged.mem", open(full_mem, "rb").read())
    status, _, err = run([ctx.skiff, "merge-memory", base, diff_mem])
    check(status == 0, err)
    r = restored(ctx, diff, base)
    expect_continues(r, before)
    r.signal(15)
    check(r.wait_exit() == 128 + 15, r.errors())


@test
def ctl_snapshot_pauses_saves_and_resumes(ctx):
    g, sock = boot_counter(ctx)
    p = subprocess.run([ctx.skiff, "ctl", "--api-sock", sock, "snapshot", "c.state", "c.mem"],
                       cwd=ctx.tmp, capture_output=True, text=True, timeout=60)
    check(p.returncode == 0 and "c.state" in p.stdout, f"{p.returncode} {p.stdout} {p.stderr}")
    info, _ = expect(sock, "GET", "/", status=200)
    check(info["state"] == "Running", info)  # resumed after the snapshot
    p = subprocess.run([ctx.skiff, "ctl", "--api-sock", sock, "snapshot", "d.state", "d.mem",
                        "--diff"], cwd=ctx.tmp, capture_output=True, text=True, timeout=60)
    check(p.returncode == 1 and "track_dirty_pages" in p.stderr, p.stderr)
    stop(g, sock)
    r = restored(ctx, os.path.join(ctx.tmp, "c.state"), os.path.join(ctx.tmp, "c.mem"))
    check(r.wait_output("probe: counter="), r.errors())
    r.signal(15)
    check(r.wait_exit() == 128 + 15, r.errors())


def counter_datagrams(host, until, timeout=TIMEOUT):
    """The N of each "counter=N" datagram on host, read until one with N >= until arrives."""
    deadline = time.monotonic() + timeout
    seen = []
    while not seen or seen[-1] < until:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        host.settimeout(left)
        try:
            data = host.recv(100)
        except socket.timeout:
            break
        m = re.fullmatch(rb"counter=(\d+)", data)
        check(m, f"a datagram that is not the counter's: {data!r}")
        seen.append(int(m.group(1)))
    check(seen and seen[-1] >= until, f"no datagram counter={until} in time; got {seen}")
    return seen


def counter_sector(n):
    """What the probe's counter_blk=1 writes to sector n % 64 before line n."""
    return b"skiffctr" + struct.pack("<Q", n) * 63


@test
def snapshot_restored_disk_and_net_work(ctx):
    disk = ctx.file("io-disk.img", bytes(1 << 20))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as host:
        host.bind(("127.0.0.1", 0))
        port = host.getsockname()[1]
        g, sock = start(ctx, "--kernel", ctx.probe, "--cpus", "2", "--memory", "96M",
                        "--disk", disk, "--net", "user", "--cmdline",
                        f"test=counter counter_blk=1 counter_net={port}")
        check(g.wait_output("probe: counter=4 "), f"no counter: {g.text()} {g.errors()}")
        before = counter_datagrams(host, 4)
        check(before == sorted(set(before)), f"datagrams out of order: {before}")
        expect(sock, "PATCH", "/vm", {"state": "Paused"})
        snap = os.path.join(ctx.tmp, "io.state")
        mem = os.path.join(ctx.tmp, "io.mem")
        expect(sock, "PUT", "/snapshot/create", {"snapshot_path": snap, "mem_file_path": mem})
        g.wait_output("never printed", timeout=0.1)
        before = g.text()
        last = counters(probe_lines(before))[-1]
        check("result=fail" not in before, before)
        stop(g, sock)

        r = restored(ctx, snap, mem)
        expect_continues(r, before)
        after = [n for n in counter_datagrams(host, last + 3) if n > last]
        # Datagram last + 1 may have gone out before the pause, ahead of its line.
        check(after and after[0] <= last + 2 and after == sorted(set(after)),
              f"after {last} the restored guest sent {after}")
        r.signal(15)
        check(r.wait_exit() == 128 + 15, r.errors())
    check("result=fail" not in r.text(), r.text())
    final = counters(probe_lines(r.text()))[-1]
    with open(disk, "rb") as f:
        data = f.read(64 * 512)
    # Sector final + 1 may hold line final + 1, written before SIGTERM came and not printed.
    for n in range(max(last + 1, final - 62), final + 1):
        sector = data[n % 64 * 512:(n % 64 + 1) * 512]
        check(sector == counter_sector(n),
              f"sector {n % 64} holds {sector[:16]!r}..., not line {n}'s (last line {final})")
