"""What the package's forked helper processes share: a name, and a lifetime tied to the run.

Every child process of a run (MCMC workers, the replication helper, the figure processes) calls
:func:`child_setup`: on Linux it names the process (``/proc/<pid>/comm``, shown by ``ps`` and
``top``) and asks the kernel to send it SIGTERM when the run dies, so that no helper outlives
a run killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import sys

__all__ = ["child_setup", "die_with_parent"]


def die_with_parent(parent: int) -> None:
    """Ask Linux to send SIGTERM to this process when ``parent`` dies (no-op elsewhere)."""
    import ctypes
    import ctypes.util
    import signal

    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def child_setup(parent: int, name: str) -> None:
    """Name this process ``name`` (Linux, at most 15 bytes) and tie its life to ``parent``."""
    import ctypes
    import ctypes.util

    if sys.platform.startswith("linux"):
        pr_set_name = 15
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(pr_set_name, name.encode()[:15], 0, 0, 0)
    die_with_parent(parent)
