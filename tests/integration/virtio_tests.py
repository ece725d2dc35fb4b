"""Integration tests of the virtio devices: the probe's drivers against skiff's devices,
and the same probe tests under QEMU microvm for comparison."""
import shutil

from harness import Guest, Skip, check, expect_pass, probe_lines, qemu_argv, run, test


def qemu_virtio_argv(ctx, cmdline, devices, memory="256M"):
    """QEMU microvm with modern virtio-mmio devices, like skiff's."""
    if not shutil.which("qemu-system-x86_64"):
        raise Skip("qemu-system-x86_64 is not installed")
    return (qemu_argv(ctx.probe, 1, memory, cmdline)[:-4] +
            ["-global", "virtio-mmio.force-legacy=false"] + devices +
            ["-kernel", ctx.probe, "-append", cmdline])


@test
def rng_gives_random_bytes(ctx):
    status, out, err = ctx.boot(cmdline="test=rng", memory="256M", extra=["--rng"])
    lines = expect_pass(status, out, err, "rng")
    check("probe: rng bytes=64" in lines, lines)


@test
def rng_same_as_qemu(ctx):
    argv = qemu_virtio_argv(ctx, "test=rng", ["-device", "virtio-rng-device"])
    qs, qout, qerr = run(argv, timeout=120)
    ss, sout, serr = ctx.boot(cmdline="test=rng", memory="256M", extra=["--rng"])
    check(qs == 1, f"QEMU exit status {qs}: {qerr.strip()[:300]}")
    check(ss == 1, f"skiff exit status {ss}: {serr.strip()[:300]}")
    check(probe_lines(sout) == probe_lines(qout), f"{probe_lines(sout)} != {probe_lines(qout)}")


@test
def probe_without_device_fails_cleanly(ctx):
    status, out, _ = ctx.boot(cmdline="test=rng")
    check(status == 3, f"exit status {status}, want 3 (probe fail)")
    check(any(l.startswith("probe: result=fail test=rng") for l in probe_lines(out)), out)


@test
def console_virtio_takes_terminal_input(ctx):
    # Input sent before the driver is up must wait for its buffers, across its reset.
    g = Guest(ctx.argv("--console", "virtio", cmdline="test=console-echo"))
    try:
        g.send(b"early\nhello\nquit\n")
        status = g.wait_exit()
        lines = expect_pass(status, g.text(), g.errors(), "console-echo")
        check("probe: console-echo lines=2" in lines, lines)
        check("early\nhello\n" in g.text().replace("\r", ""), g.text())
    finally:
        g.kill()


@test
def console_virtio_after_ready(ctx):
    g = Guest(ctx.argv("--console", "virtio", cmdline="test=console-echo"))
    try:
        check(g.wait_output("probe: console ready"), g.text())
        g.send(b"one\ntwo\nthree\nquit\n")
        status = g.wait_exit()
        lines = expect_pass(status, g.text(), g.errors(), "console-echo")
        check("probe: console-echo lines=3" in lines, lines)
    finally:
        g.kill()
