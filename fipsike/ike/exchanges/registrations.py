"""Which ExchangeTask does what: adding an exchange is a module and a line here."""

from __future__ import annotations

from fipsike.ike.exchanges.create_child_sa import CreateChildSa
from fipsike.ike.exchanges.ike_auth import IkeAuth
from fipsike.ike.exchanges.ike_followup_ke import IkeFollowupKe
from fipsike.ike.exchanges.ike_intermediate import IkeIntermediate
from fipsike.ike.exchanges.ike_sa_init import IkeSaInit
from fipsike.ike.exchanges.informational import Informational
from fipsike.ike.sa import IkeState
from fipsike.ike.tasks import TaskRegistry

# where an established IKE SA takes requests: also while it is being replaced or deleted
LIVE = (IkeState.ESTABLISHED, IkeState.REKEYED, IkeState.DELETING)


def default_registry() -> TaskRegistry:
    r = TaskRegistry()
    r.register(IkeSaInit())  # its requests come before any IKE SA exists: dispatch hands them over
    # RFC 9242: between IKE_SA_INIT and IKE_AUTH; ike_sa_init.intermediate_rounds() queues it
    r.register(IkeIntermediate(), request_states=(IkeState.INIT_DONE,))
    r.register(IkeAuth(), request_states=(IkeState.INIT_DONE,))
    r.register(CreateChildSa(), request_states=LIVE)
    r.register(Informational(), request_states=LIVE)
    r.register(IkeFollowupKe(), request_states=LIVE)  # RFC 9370 2.2.4, after a CREATE_CHILD_SA
    return r
