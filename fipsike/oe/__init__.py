"""Opportunistic IPsec (sans-I/O): the policy groups as kernel policies, on-demand instances of the
group conns from kernel ACQUIREs, negotiation and failure shunts, NULL authentication (RFC 7619)
for opportunistic conns only.

    groups        the five groups, their kernel policies and priorities, the policy table
    opportunistic the instance / bare-shunt table: events in, actions out, every entry with a deadline
    actions       what the daemon carries out
    kernel_side   apply_policies(kernel, actions): the InstallPolicy / RemovePolicy half
    trigger       `fipsike oe-initiate`'s addresses as a trigger

How the daemon drives it (one Opportunistic per daemon, `now` from the daemon's clock):

    start     oe = Opportunistic(group_conns, groups, local_addresses, shunt_lifetime)
              after kernel.flush_owned(): apply_policies(kernel, oe.install())
              set net.core.xfrm_larval_drop=0 if any group conn has negotiationshunt=hold
    kernel    Acquire with oe.owns_reqid(ev.reqid)       -> oe.on_acquire(ev, now)
    IKE in    IKE_SA_INIT request that no configured conn
              takes (before engine.receive)              -> oe.on_peer_initiated(local_ip, remote_ip, now,
                                                            our SPIi, its SPIi, its port, its NAT hashes);
              IgnorePeer: drop the datagram; AcceptPeer: engine.add_connection, then engine.receive
    engine    IkeSaEstablished / IkeSaRekeyed            -> oe.on_established(ev.connection, now, ike_sa)
              IkeSaFailed / ChildSaFailed                -> oe.on_failed(ev.connection, now)
              InstallChildSa the kernel took             -> oe.on_child_installed(ev.connection)
              InstallChildSa the kernel refused          -> oe.on_child_refused(ev.connection, now)
              IkeSaDeleted / DeadPeer (after the engine's
              DeleteChildSa policies are removed)         -> oe.on_down(ev.connection, now, ev.ike_sa)
              (names that are not instances are ignored: pass every event)
    timer     WakeAt(at) in any result                   -> oe.timer(now) at or after `at`
    reload    new group files and conns                  -> oe.reload(groups, conns, local, now): policy
              changes, and teardown of entries the new configuration no longer gives to their group
    status    oe.status(now) / oe.render_status(now), oe.policy_rows() / groups.render_table(oe.table),
              groups.group_of(policy_state, oe.table) to name a kernel policy's group
    oe-initiate  trigger.trigger_from_addresses(local, remote) -> oe.on_trigger(t.local, t.remote, now)

Actions, carried out in order: InstallPolicy / RemovePolicy -> kernel (apply_policies does both);
Initiate -> engine.add_connection + engine.initiate; AbandonInitiation -> engine.terminate (before the
peer's IKE_SA_INIT goes to the engine); Forget -> engine.remove_connection; Terminate -> engine.terminate;
Log -> the event log.
"""
