"""File stamps: what the config caches compare to tell whether a file changed.

A stamp is a file's modification time, size, inode and change time (all from one
``stat``). Any write changes the modification and change times; setting the modification
time back (``touch -d``, an archive being unpacked) still changes the change time, which
nothing but the kernel sets. The one blind spot is a second write within the file system's
time-stamp granularity, which can leave every part equal: so a stamp is trusted only for a
file last modified at least :data:`RACY_NS` before it was taken.
"""

from __future__ import annotations

import os
import time

__all__ = ["RACY_NS", "Stamp", "racy_after", "stamp"]

Stamp = tuple[int, int, int, int]

# Files modified less than this long ago may change again without their stamp changing.
RACY_NS = 2_000_000_000


def stamp(path: str) -> Stamp:
    """The stamp of ``path``; :class:`OSError` when it cannot be read."""
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


def racy_after() -> int:
    """The time (ns since the epoch) from which a file's modification makes its stamp
    untrustworthy, as of now."""
    return time.time_ns() - RACY_NS
