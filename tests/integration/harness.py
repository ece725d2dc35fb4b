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
