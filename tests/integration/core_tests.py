"""Integration tests of the core machine: the probe's report, SMP, memory, serial input,
reset and power-off, the terminal, bad input, the same report under QEMU, and the counter guest."""
import json
import os
import pty
import re
import shutil
import signal
import termios

from harness import (Guest, Skip, check, expect_error, expect_pass, probe_lines,  # noqa: F401
                     qemu_argv, run, run_guest, test)


# --- the probe's report -------------------------------------------------------------

def report_test(cpus, memory, mib):
    def fn(ctx):
        status, out, err = ctx.boot(cpus=cpus, memory=memory)
        lines = expect_pass(status, out, err, "hello")
        check(f"probe: cpus={cpus} mem_mib={mib}" in lines, f"report {lines[1:2]}")
        ups = [l for l in lines if " up apic=" in l]
        check(ups == [f"probe: cpu {i} up apic={i}" for i in range(1, cpus)], f"APs {ups}")
    fn.__name__ = f"report_{cpus}cpu_{memory}"
    return fn


for _cpus in (1, 2, 4):
    for _mem, _mib in (("64M", 64), ("1G", 1024), ("5G", 5120)):
        test(report_test(_cpus, _mem, _mib))
test(report_test(2, "16G", 16384))  # the "at least 16G"


@test
def smp_test_passes(ctx):
    expect_pass(*ctx.boot(cpus=4, cmdline="test=smp"), "smp")


@test
def mem_test_passes_at_1g(ctx):
    status, out, err = ctx.boot(memory="1G", cmdline="test=mem")
    lines = expect_pass(status, out, err, "mem")
    check(any(l.startswith("probe: mem verified_mib=") for l in lines), "no verified line")


@test
def serial_input_reaches_guest(ctx):
    g = Guest(ctx.argv(cmdline="test=echo"))
    try:
        check(g.wait_output("probe: echo ready"), f"no ready line: {g.text()!r}")
        g.send(b"hello skiff\n")
        check(g.wait_output("hello skiff"), f"no echo: {g.text()!r}")
        g.send(b"quit\n")
        status = g.wait_exit()
        expect_pass(status, g.text(), g.errors(), "echo")
    finally:
        g.kill()


@test
def reset_exits_zero(ctx):
    status, out, err = ctx.boot(cmdline="test=reset")
    check(status == 0, f"exit status {status}, stderr {err.strip()}")
    check("result=" not in out, "probe kept running after reset")


@test
def poweroff_exits_zero(ctx):
    status, out, err = ctx.boot(cmdline="test=poweroff", cpus=2)
    check(status == 0, f"exit status {status}, stderr {err.strip()}")


@test
def debug_exit_status_of_failure(ctx):
    status, out, _ = ctx.boot(cmdline="test=no-such-test")
    check(status == 3, f"exit status {status}, want 3 (debug-exit 1)")
    check(any(l.startswith("probe: result=fail test=no-such-test") for l in probe_lines(out)),
          out)


@test
def unclaimed_port_logged_once_and_sigterm_stops(ctx):
    # Without --debug-exit port 0xf4 is unclaimed: the probe then halts for good.
    g = Guest(ctx.argv("--log-level", "debug", debug_exit=False))
    try:
        check(g.wait_output("probe: result=pass"), g.text())
        check(g.wait_output("unclaimed pio write at 0xf4", stream="err"), g.errors())
        g.signal(signal.SIGTERM)
        status = g.wait_exit()
        check(status == 128 + signal.SIGTERM, f"exit status {status}")
        check(g.errors().count("unclaimed") == 1, g.errors())
    finally:
        g.kill()


def terminal_stop_test(name, stop, want_status):
    """Boots with a pty as stdin, stops skiff with stop(guest, master) and checks that
    the terminal was raw while it ran and is restored as it was afterwards."""
    def fn(ctx):
        master, slave = pty.openpty()
        before = termios.tcgetattr(slave)
        g = Guest(ctx.argv(cmdline="test=echo"), stdin=slave)
        try:
            check(g.wait_output("probe: echo ready"), g.text())
            check(termios.tcgetattr(slave)[3] & termios.ICANON == 0, "terminal not raw")
            stop(g, master)
            status = g.wait_exit()
            check(status == want_status, f"exit status {status}, want {want_status}")
            check(termios.tcgetattr(slave) == before, "terminal mode not restored")
        finally:
            g.kill()
            os.close(master)
            os.close(slave)
    fn.__name__ = name
    return fn


test(terminal_stop_test("ctrl_a_x_quits_and_restores_terminal",
                        lambda g, master: os.write(master, b"\x01x"), 0))
test(terminal_stop_test("sigterm_restores_terminal",
                        lambda g, master: g.signal(signal.SIGTERM), 128 + signal.SIGTERM))


@test
def guest_ram_is_lazy(ctx):
    g = run_guest(ctx.argv(memory="5G"))
    expect_pass(g.proc.returncode, g.text(), g.errors(), "hello")
    peak_kib = g.rusage.ru_maxrss
    check(peak_kib < 64 * 1024, f"peak RSS {peak_kib} KiB for a 5G guest that touches little")


@test
def boot_cycles_200(ctx):
    for i in range(200):
        status, out, err = run(ctx.argv(cpus=2), timeout=30)
        check(status == 1, f"cycle {i}: exit status {status}, stderr {err.strip()}")
        check("probe: result=pass test=hello" in out, f"cycle {i}: {out!r}")


# --- bad input ----------------------------------------------------------------------

@test
def bad_kernel_files(ctx):
    probe = open(ctx.probe, "rb").read()
    arm = bytearray(probe)
    arm[18:20] = (183).to_bytes(2, "little")
    cases = [
        ("/nonexistent/kernel", "No such file"),
        (ctx.file("empty", b""), "empty"),
        (ctx.file("truncated", probe[:40]), "truncated ELF header"),
        (ctx.file("short-segment", probe[:len(probe) // 2]), "past the end of the file"),
        (ctx.file("garbage", os.urandom(4096)), "not a kernel"),
        (ctx.file("aarch64", bytes(arm)), "another architecture"),
        (ctx.tmp, "not a regular file"),
    ]
    for path, needle in cases:
        expect_error(ctx, ctx.argv(kernel=path), needle)


@test
def bad_initrd(ctx):
    expect_error(ctx, ctx.argv("--initrd", "/nonexistent/initrd"), "No such file")
    expect_error(ctx, ctx.argv("--initrd", ctx.file("rd0", b"")), "empty")
    big = ctx.file("big-initrd", b"")
    os.truncate(big, 80 << 20)
    expect_error(ctx, ctx.argv("--initrd", big), "does not fit")


@test
def bad_options(ctx):
    s, p = ctx.skiff, ctx.probe
    expect_error(ctx, [s, "run"], "--kernel FILE is required")
    expect_error(ctx, [s, "run", "--kernel", p, "--cpus", "0"], "--cpus 0")
    expect_error(ctx, [s, "run", "--kernel", p, "--memory", "lots"], "--memory lots")
    expect_error(ctx, [s, "run", "--kernel", p, "--memory", "4M"], "--memory 4M")
    expect_error(ctx, [s, "run", "--kernel", p, "--bogus"], "--bogus")
    expect_error(ctx, [s, "frobnicate"], "unknown command")
    expect_error(ctx, [s, "run", "--kernel", p, "--cmdline", "x" * 70000], "--cmdline")


@test
def missing_kvm(ctx):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise Skip("needs root and unshare to hide /dev/kvm")
    argv = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs none /dev && exec "$@"', "sh"]
    expect_error(ctx, argv + ctx.argv(), "/dev/kvm: not found")


@test
def kvm_permission_denied(ctx):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        raise Skip("needs root and setpriv to drop privileges")
    if os.stat("/dev/kvm").st_mode & 0o006:
        raise Skip("/dev/kvm is world-accessible here")
    kernel = ctx.file("probe-copy", open(ctx.probe, "rb").read())
    os.chmod(ctx.tmp, 0o755)
    os.chmod(kernel, 0o644)
    argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    expect_error(ctx, argv + ctx.argv(kernel=kernel), "/dev/kvm: permission denied")


@test
def help_and_version(ctx):
    status, out, _ = run([ctx.skiff, "run", "--help"])
    check(status == 0, f"status {status}")
    for opt in ("--kernel", "--initrd", "--cmdline", "--cpus", "--memory", "--debug-exit",
                "--log-level", "--help"):
        check(opt in out, f"{opt} missing from run --help")
    status, out, _ = run([ctx.skiff, "--help"])
    check(status == 0 and "run" in out, out)
    status, out, _ = run([ctx.skiff, "--version"])
    check(status == 0 and out.startswith("skiff "), out)


# --- side by side with QEMU ---------------------------------------------------------

def qemu_compare(cpus, memory, test_name):
    def fn(ctx):
        if not shutil.which("qemu-system-x86_64"):
            raise Skip("qemu-system-x86_64 is not installed")
        cmdline = f"test={test_name}"
        qs, qout, qerr = run(qemu_argv(ctx.probe, cpus, memory, cmdline), timeout=120)
        ss, sout, serr = ctx.boot(cpus=cpus, memory=memory, cmdline=cmdline)
        check(qs == 1, f"QEMU exit status {qs}: {qerr.strip()[:300]}")
        check(ss == 1, f"skiff exit status {ss}: {serr.strip()[:300]}")
        check(probe_lines(sout) == probe_lines(qout),
              f"skiff {probe_lines(sout)} != QEMU {probe_lines(qout)}")
    fn.__name__ = f"same_as_qemu_{test_name}_{cpus}cpu_{memory}"
    return fn


for _cpus, _mem, _t in ((1, "64M", "hello"), (2, "1G", "smp"), (4, "5G", "hello"),
                        (1, "1G", "mem")):
    test(qemu_compare(_cpus, _mem, _t))


@test
def boot_time_device_logs_once(ctx):
    status, out, err = ctx.boot(cmdline="test=boot-time", extra=["--log-level", "info"])
    expect_pass(status, out, err, "boot-time")
    times = [l for l in err.splitlines() if "guest boot time:" in l]
    check(len(times) == 1, err)
    us = int(times[0].split("guest boot time: ")[1].split()[0])
    check(us > 0, times[0])
    status, out, err = ctx.boot(cmdline="test=boot-time")  # default level: quiet
    check("boot time" not in err, err)


@test
def unpack_kernel_refuses_what_it_cannot_unpack(ctx):
    out = os.path.join(ctx.tmp, "vmlinux")
    status, _, err = run([ctx.skiff, "unpack-kernel", ctx.probe, out])
    check(status == 2 and "not a bzImage" in err and not os.path.exists(out), err)
    status, _, err = run([ctx.skiff, "unpack-kernel", ctx.probe])
    check(status == 2 and "usage" in err, err)


@test
def config_file_boots_the_vm(ctx):
    disk = ctx.file("cfg-disk.img", bytes(1 << 20))
    config = ctx.file("vm.json", json.dumps({
        "boot-source": {"kernel_image_path": ctx.probe, "boot_args": "test=blk-id"},
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": False},
        "drives": [{"drive_id": "rootfs", "path_on_host": disk, "is_root_device": True,
                    "is_read_only": False}],
        "entropy": {}}).encode())
    status, out, err = run([ctx.skiff, "run", "--config-file", config, "--debug-exit"])
    lines = expect_pass(status, out, err, "blk-id")
    check("probe: cpus=2 mem_mib=256" in lines and "probe: blk-id id=rootfs" in lines, lines)


@test
def config_file_bad_input(ctx):
    s = ctx.skiff
    expect_error(ctx, [s, "run", "--config-file", "/nonexistent.json"], "No such file")
    bad = ctx.file("bad.json", b'{"boot-source": {"kernel_image_path": "/k"},')
    expect_error(ctx, [s, "run", "--config-file", bad], "bad.json: line")
    unknown = ctx.file("unknown.json", b'{"boot-source": {"kernel_image_path": "/k"}, "x": 1}')
    expect_error(ctx, [s, "run", "--config-file", unknown], "unknown field 'x'")
    good = ctx.file("good.json", json.dumps(
        {"boot-source": {"kernel_image_path": ctx.probe}}).encode())
    expect_error(ctx, [s, "run", "--config-file", good, "--memory", "1G"], "--memory")


# --- the counter guest: what pause/resume, snapshot and migration tests watch ----------

COUNTER_CMDLINE = "test=counter counter_max=5"


def counters(lines):
    return [int(m.group(1)) for m in (re.match(r"probe: counter=(\d+)", l) for l in lines) if m]


@test
def counter_counts_to_max(ctx):
    status, out, err = ctx.boot(cmdline=COUNTER_CMDLINE)
    lines = expect_pass(status, out, err, "counter")
    check(counters(lines) == [1, 2, 3, 4, 5], f"counters {counters(lines)} in {lines}")


@test
def same_as_qemu_counter_1cpu_64M(ctx):
    if not shutil.which("qemu-system-x86_64"):
        raise Skip("qemu-system-x86_64 is not installed")
    # The counter's clock is the TSC calibrated against the RTC, which microvm has with rtc=on.
    qargv = [a.replace("microvm,acpi=off", "microvm,acpi=off,rtc=on")
             for a in qemu_argv(ctx.probe, 1, "64M", COUNTER_CMDLINE)]
    qs, qout, qerr = run(qargv, timeout=120)
    ss, sout, serr = ctx.boot(memory="64M", cmdline=COUNTER_CMDLINE)
    check(qs == 1, f"QEMU exit status {qs}: {qerr.strip()[:300]}")
    check(ss == 1, f"skiff exit status {ss}: {serr.strip()[:300]}")
    check(counters(probe_lines(sout)) == [1, 2, 3, 4, 5], f"skiff {probe_lines(sout)}")
    check(probe_lines(sout) == probe_lines(qout),
          f"skiff {probe_lines(sout)} != QEMU {probe_lines(qout)}")
