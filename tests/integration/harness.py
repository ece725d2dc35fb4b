"""A small harness for booting guests under skiff (and QEMU) with bounded waits.

Nothing here sleeps to wait for a guest: every wait reads the guest's output or its
exit, with a deadline after which the test fails.
"""
import os
import select
import signal
import subprocess
import time

TIMEOUT = 60  # seconds any single wait may take before the test fails


class Guest:
    """A running VMM process whose stdout/stderr are read as they arrive."""

    def __init__(self, argv, stdin=subprocess.PIPE, env=None, preexec_fn=None):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     preexec_fn=preexec_fn)
        self.out = b""
        self.err = b""

    def _pump(self, timeout):
        fds = [f for f in (self.proc.stdout, self.proc.stderr) if f and not f.closed]
        if not fds:
            return False
        ready, _, _ = select.select(fds, [], [], timeout)
        for f in ready:
            data = os.read(f.fileno(), 65536)
            if not data:
                f.close()
            elif f is self.proc.stdout:
                self.out += data
            else:
                self.err += data
        return True

    def wait_output(self, text, timeout=TIMEOUT, stream="out"):
        """Waits until text appears on stdout (or stderr); returns whether it did."""
        deadline = time.monotonic() + timeout
        needle = text.encode()
        while needle not in (self.out if stream == "out" else self.err):
            left = deadline - time.monotonic()
            if left <= 0 or not self._pump(left):
                return needle in (self.out if stream == "out" else self.err)
        return True

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_exit(self, timeout=TIMEOUT):
        """Returns the exit status, or None (after killing it) if it did not exit in time.

        Also records the process's own resource usage in self.rusage.
        """
        deadline = time.monotonic() + timeout
        while True:
            pid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return None
            if not self._pump(min(left, 0.05)):
                # Both streams closed: the process is on its way out; poll its exit.
                select.select([], [], [], min(left, 0.01))
        while self._pump(0):  # output written just before the exit
            if all(f.closed for f in (self.proc.stdout, self.proc.stderr)):
                break
        self.rusage = rusage
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        return self.proc.returncode

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            self.proc.wait()

    def text(self):
        return self.out.decode(errors="replace")

    def errors(self):
        return self.err.decode(errors="replace")


def probe_lines(text):
    """The guest's report: its 'probe:' lines, stripped of CRs."""
    return [l.strip() for l in text.replace("\r", "").split("\n") if l.startswith("probe:")]


def run(argv, timeout=TIMEOUT, stdin=subprocess.DEVNULL, **kw):
    """Runs a VMM to completion: returns (status or None on timeout, stdout, stderr)."""
    g = Guest(argv, stdin=stdin, **kw)
    status = g.wait_exit(timeout)
    return status, g.text(), g.errors()


def run_guest(argv, timeout=TIMEOUT, stdin=subprocess.DEVNULL, **kw):
    """Like run(), but returns the finished Guest (for its rusage)."""
    g = Guest(argv, stdin=stdin, **kw)
    g.wait_exit(timeout)
    return g


def qemu_argv(probe, cpus, memory, cmdline):
    return ["qemu-system-x86_64", "-M", "microvm,acpi=off", "-enable-kvm",
            "-cpu", "host,-arch-capabilities", "-smp", str(cpus), "-m", memory,
            "-nographic", "-nodefaults", "-no-user-config", "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-kernel", probe, "-append", cmdline]


def sigterm(g):
    g.signal(signal.SIGTERM)


# --- the test registry and the helpers every test module uses ---------------------

TESTS = []


class Skip(Exception):
    pass


def test(fn):
    TESTS.append(fn)
    return fn


def check(cond, why):
    if not cond:
        raise AssertionError(why)


class Ctx:
    def __init__(self, skiff, probe, tmp):
        self.skiff = skiff
        self.probe = probe
        self.tmp = tmp

    def argv(self, *extra, cpus=1, memory="64M", cmdline="test=hello", debug_exit=True,
             kernel=None):
        a = [self.skiff, "run", "--kernel", kernel or self.probe, "--cpus", str(cpus),
             "--memory", memory, "--cmdline", cmdline]
        if debug_exit:
            a.append("--debug-exit")
        return a + list(extra)

    def boot(self, extra=(), timeout=TIMEOUT, **kw):
        return run(self.argv(*extra, **kw), timeout=timeout)

    def file(self, name, data):
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path


def expect_pass(status, out, err, test_name):
    lines = probe_lines(out)
    check(status == 1, f"exit status {status}, want 1 (debug-exit 0); stderr: {err.strip()}")
    check(lines and lines[0] == "probe: hello", f"first line {lines[:1]}")
    check(f"probe: result=pass test={test_name}" in lines, f"no pass line in {lines}")
    return lines


def expect_error(ctx, argv, needle):
    status, out, err = run(argv, timeout=20)
    lines = [l for l in err.splitlines() if l.strip()]
    check(status == 2, f"exit status {status}, want 2; stderr {err!r}")
    check(len(lines) == 1, f"want one error line, got {lines}")
    check(needle in lines[0], f"{needle!r} not in {lines[0]!r}")
