"""Kernel tests: host tests run here; tests/kernel/guest runs only inside the UML guest
(scripts/guest-run.sh sets FIPSIKE_GUEST=1), driven from the host by test_guest.py."""

import os

collect_ignore = [] if os.environ.get("FIPSIKE_GUEST") == "1" else ["guest"]
