"""The kernel half of the opportunistic actions: InstallPolicy / RemovePolicy onto a Kernel.

Blocking (XfrmKernel is): the daemon runs it in a worker thread. Everything else in the action
list is for the engine and is returned untouched, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from fipsike.kernel.api import Kernel
from fipsike.kernel.types import KernelError
from fipsike.oe.actions import InstallPolicy, OeAction, RemovePolicy

log = logging.getLogger("fipsike.oe")


def apply_policies(kernel: Kernel, actions: Iterable[OeAction]) -> tuple[list[OeAction], list[str]]:
    """Carry out the policy actions; return (the other actions, the kernel errors as text).

    A RemovePolicy that finds nothing (ENOENT) is fine: the entry may have been replaced by
    a tunnel policy or flushed. Other errors are reported, not raised, so one bad policy does
    not stop the rest (the caller logs them)."""
    rest: list[OeAction] = []
    errors: list[str] = []
    for act in actions:
        if isinstance(act, InstallPolicy):
            try:
                kernel.install_policy(act.spec)
            except KernelError as exc:
                errors.append(str(exc))
        elif isinstance(act, RemovePolicy):
            try:
                kernel.remove_policy(act.selector, act.direction)
            except KernelError as exc:
                if exc.errno_name != "ENOENT":
                    errors.append(str(exc))
        else:
            rest.append(act)
    for e in errors:
        log.warning("opportunistic policy: %s", e)
    return rest, errors
