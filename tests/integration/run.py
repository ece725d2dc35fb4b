#!/usr/bin/env python3
"""Integration tests: boot the probe guest under skiff (and QEMU) and check what it reports.

Usage: run.py --skiff build/skiff --probe build/probe [--only SUBSTRING]
Prints one "PASS name", "FAIL name: why" or "SKIP name: why" line per test.
"""
import argparse
import os
import sys
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import core_tests  # noqa: E402,F401  (registers its tests)
import virtio_tests  # noqa: E402,F401
import blk_tests  # noqa: E402,F401
import net_tests  # noqa: E402,F401
import api_tests  # noqa: E402,F401
import kbd_tests  # noqa: E402,F401
import snapshot_tests  # noqa: E402,F401
import migrate_tests  # noqa: E402,F401
import linux_tests  # noqa: E402,F401
from harness import TESTS, Ctx, Skip  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--probe", required=True)
    ap.add_argument("--only", default="")
    ap.add_argument("--exclude", default=None)
    args = ap.parse_args()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="skiff-it-") as tmp:
        ctx = Ctx(os.path.abspath(args.skiff), os.path.abspath(args.probe), tmp)
        for fn in TESTS:
            if args.only not in fn.__name__ or (args.exclude and args.exclude in fn.__name__):
                continue
            try:
                fn(ctx)
                print(f"PASS {fn.__name__}", flush=True)
            except Skip as e:
                print(f"SKIP {fn.__name__}: {e}", flush=True)
            except Exception as e:  # one broken test must not hide the others
                failed += 1
                why = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
                print(f"FAIL {fn.__name__}: {why}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
