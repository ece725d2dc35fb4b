"""Linux early-boot milestones: Debian's cloud kernel (from scripts/linux-guest) booted by
skiff as a vmlinux (PVH), as a bzImage unpacked on the host and as the bzImage as given,
and by QEMU for comparison. These hosts emulate guest kernel mode (shared/docs/host-kvm.md), so a boot
only gets as far as early init: each one stops as soon as its milestones are seen."""
import os
import re
import shutil
import threading
import time

from harness import Guest, Skip, check, test

USER_CMDLINE = "earlyprintk=ttyS0 console=ttyS0 clearcpuid=xsave,cx16,avx,avx2"
FXSAVE = "x86/fpu: x87 FPU will use FXSAVE"
MEMORY = re.compile(r"Memory: \d+K/(\d+)K available")
WARNING = re.compile(r"warn|error|fail|bug|invalid|not found|unknown", re.IGNORECASE)


def guest_files(ctx):
    d = os.path.join(os.path.dirname(ctx.probe), "linux-guest")
    files = {n: os.path.join(d, n) for n in ("vmlinux", "bzImage", "initramfs.cpio.gz")}
    if not all(os.path.exists(f) for f in files.values()):
        raise Skip(f"no Linux guest in {d} (scripts/linux-guest builds it)")
    return files


def boot_until(argv, needle, timeout):
    """Boots until needle is printed (then stops the VMM); returns (stdout, stderr, seen)."""
    g = Guest(argv)
    try:
        seen = g.wait_output(needle, timeout=timeout)
    finally:
        g.kill()
    return g.text().replace("\r", ""), g.errors(), seen


def kernel_lines(text):
    """The kernel's log lines without their timestamps."""
    return [re.sub(r"^\[\s*\d+\.\d+\] ", "", l) for l in text.split("\n") if l.startswith("[")]


def skiff_debug(err, prefix):
    return [l.split(prefix, 1)[1] for l in err.splitlines() if prefix in l]


def check_milestones(out, err, cpus, memory_bytes):
    lines = kernel_lines(out)
    cmdline = skiff_debug(err, "kernel command line: ")
    check(len(cmdline) == 1, f"skiff logged {cmdline}")
    check(f"Command line: {cmdline[0]}" in lines, f"kernel's command line differs: "
          f"{[l for l in lines if l.startswith('Command line')]} vs {cmdline}")
    ours = ["BIOS-e820: " + e for e in skiff_debug(err, "e820: ")]
    theirs = [l for l in lines if l.startswith("BIOS-e820: ")]
    check(ours == theirs, f"e820 differs: kernel {theirs} skiff {ours}")
    acpi = [l for l in lines if "ACPI" in l]
    check(any(l.startswith("ACPI: DSDT") for l in acpi), f"no DSDT in {acpi}")
    check(not [l for l in acpi if WARNING.search(l)],
          f"ACPI complaints: {[l for l in acpi if WARNING.search(l)]}")
    check(f"smpboot: Allowing {cpus} CPUs, 0 hotplug CPUs" in lines,
          [l for l in lines if "smpboot" in l])
    totals = [int(m.group(1)) for m in map(MEMORY.search, lines) if m]
    want = memory_bytes >> 10
    # The kernel counts RAM less what lies below 1 MiB that it never manages.
    check(totals and want - 1024 <= totals[0] <= want, f"Memory: {totals} vs {want}K")
    return lines


def check_ramdisk(lines, err):
    placed = skiff_debug(err, "initrd at ")
    check(len(placed) == 1, f"skiff logged {placed}")
    addr = int(placed[0].split(",")[0], 16)
    size = int(placed[0].split(", ")[1].split()[0])
    end = ((addr + size + 4095) & ~4095) - 1
    want = f"RAMDISK: [mem {addr:#010x}-{end:#010x}]"
    check(want in lines, f"{want} not in {[l for l in lines if 'RAMDISK' in l]}")


def warnings_before_memory(lines):
    out = []
    for l in lines:
        if MEMORY.search(l):
            break
        if WARNING.search(l):
            out.append(re.sub(r"0x[0-9a-f]+|\d+", "N", l))
    return out


@test
def linux_early_boot_milestones(ctx):
    files = guest_files(ctx)
    if not shutil.which("qemu-system-x86_64"):
        raise Skip("qemu-system-x86_64 is not installed")
    debug = ["--log-level", "debug"]
    runs = {
        # vmlinux through its PVH note: 4 vCPUs, 3G, an initrd, all the way to FXSAVE
        "pvh": (ctx.argv("--initrd", files["initramfs.cpio.gz"], *debug, cpus=4, memory="3G",
                         cmdline=USER_CMDLINE, debug_exit=False, kernel=files["vmlinux"]),
                FXSAVE, 420),
        # the bzImage, unpacked by skiff: 1 vCPU, 256M, to the memory report
        "bzimage": (ctx.argv(*debug, cpus=1, memory="256M", cmdline=USER_CMDLINE,
                             debug_exit=False, kernel=files["bzImage"]), "K available", 300),
        # the bzImage as given, through its own decompressor and 64-bit entry: a minute
        # and a half of emulated decompression, then its first lines
        "as-given": (ctx.argv("--no-unpack", *debug, cpus=1, memory="256M",
                              cmdline=USER_CMDLINE, debug_exit=False, kernel=files["bzImage"]),
                     "NX (Execute Disable)", 400),
        # QEMU on the same vmlinux and machine size as "pvh", to the memory report
        "qemu": (["qemu-system-x86_64", "-M", "microvm,rtc=on", "-enable-kvm",
                  "-cpu", "host,-arch-capabilities", "-smp", "4", "-m", "3G", "-nographic",
                  "-nodefaults", "-no-user-config", "-no-reboot", "-serial", "stdio",
                  "-kernel", files["vmlinux"], "-initrd", files["initramfs.cpio.gz"],
                  "-append", USER_CMDLINE], "K available", 300),
    }
    results = {}

    def boot(names):
        for name in names:
            t0 = time.monotonic()
            argv, needle, timeout = runs[name]
            results[name] = boot_until(argv, needle, timeout) + (time.monotonic() - t0,)

    # Two cores, two lanes of about the same length.
    threads = [threading.Thread(target=boot, args=(n,))
               for n in (["pvh", "bzimage"], ["qemu", "as-given"])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for name, (out, err, seen, secs) in results.items():
        check(seen, f"{name}: milestone not reached in {secs:.0f}s; last lines "
              f"{kernel_lines(out)[-5:]} {err[-300:]}")
    out, err, _, _ = results["pvh"]
    lines = check_milestones(out, err, 4, 3 << 30)
    check_ramdisk(lines, err)
    check(FXSAVE in lines, "no FXSAVE line")
    out, err, _, _ = results["bzimage"]
    check(any("payload unpacked on the host" in l for l in err.splitlines()), err[-300:])
    check_milestones(out, err, 1, 256 << 20)
    out, err, _, _ = results["as-given"]
    lines = kernel_lines(out)
    check(f"Command line: {skiff_debug(err, 'kernel command line: ')[0]}" in lines,
          [l for l in lines if l.startswith("Command line")])
    check(["BIOS-e820: " + e for e in skiff_debug(err, "e820: ")] ==
          [l for l in lines if l.startswith("BIOS-e820: ")], "as-given: e820 differs")
    ours = warnings_before_memory(kernel_lines(results["pvh"][0]))
    qemus = warnings_before_memory(kernel_lines(results["qemu"][0]))
    extra = [w for w in ours if w not in qemus]
    check(not extra, f"warnings under skiff that QEMU does not print: {extra}")
    print(f"  linux boots: " + ", ".join(f"{n} {r[3]:.0f}s" for n, r in results.items()),
          flush=True)
