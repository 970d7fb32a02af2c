"""tests/oe/guest needs a kernel with ESP: it runs inside the user-mode-linux guest, driven from the host by
test_guest_mesh.py (scripts/guest-run.sh sets FIPSIKE_GUEST=1)."""

import os

collect_ignore = [] if os.environ.get("FIPSIKE_GUEST") == "1" else ["guest"]
