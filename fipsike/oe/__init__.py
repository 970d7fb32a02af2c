"""Opportunistic IPsec (sans-I/O): the policy groups as kernel policies, on-demand instances of the
group conns from kernel ACQUIREs, negotiation and failure shunts, NULL authentication (RFC 7619)
for opportunistic conns only.

    groups        the five groups, their kernel policies and priorities, the policy table
    opportunistic the instance / bare-shunt table: events in, actions out, every entry with a deadline
    actions       what the daemon carries out
    trigger       `fipsike oe-initiate`'s addresses as a trigger
"""
