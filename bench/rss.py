"""Resident memory of this process from /proc, for the benchmarks (Linux only)."""

from __future__ import annotations


def status(field: str) -> int | None:
    """A VmHWM/VmRSS-style field of /proc/self/status, in bytes."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak() -> bool:
    """Start the high-water mark again from the current RSS (Linux 4.0+)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False
