"""The SA table: every IKE SA and Child SA of an engine, and every index over them.

One object owns all the indices, and every change that moves an SA within them (a new
responder SPI, the peer's NAT port change, a Child SA moving to a rekeyed IKE SA, a delete)
is one method here, so no index can be left behind: a deleted SA leaves every index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fipsike.ike.actions import Address
from fipsike.ike.sa import ChildSa, IkeSa, IkeState

InitKey = tuple[bytes, str, int]  # (peer's SPIi, its address and port as IKE_SA_INIT came from)


class SaTable:
    """IKE SAs by our SPI (unique per engine), by name and by the IKE_SA_INIT that made them (a
    responder's), Child SAs by inbound SPI, and the half-open bookkeeping for cookies and the
    per-source limit."""

    def __init__(self, on_add: Callable[[IkeSa], None] | None = None) -> None:
        self.on_add = on_add  # the engine's touch(): a new SA needs its deadlines armed
        self.by_spi: dict[bytes, IkeSa] = {}
        # responder: (peer SPIi, peer address) -> our SA, so a retransmitted IKE_SA_INIT request
        # maps to the same half-open SA (RFC 7296 2.1). Keyed by the address the request came from,
        # which stays the key when the peer later moves (NAT port change).
        self.by_init: dict[InitKey, IkeSa] = {}
        self._init_key: dict[bytes, InitKey] = {}  # our SPI -> its by_init key
        self._by_name: dict[str, IkeSa] = {}
        self._name_of: dict[bytes, str] = {}  # our SPI -> the name it is indexed under
        self._children: dict[int, IkeSa] = {}  # inbound Child SA SPI -> its IKE SA
        self._half_open: set[bytes] = set()  # our SPIs of SAs not yet through IKE_AUTH (O(1) count)
        self._half_open_src: dict[bytes, str] = {}  # responder half-open SA -> the peer's IP
        self._per_source: dict[str, int] = {}

    # --- IKE SAs -----------------------------------------------------------------------
    def add(self, sa: IkeSa) -> None:
        spi = sa.our_spi
        self.by_spi[spi] = sa
        name = self._name_of[spi] = sa.name
        self._by_name[name] = sa
        if sa.state in (IkeState.INIT_SENT, IkeState.INIT_DONE, IkeState.AUTH_SENT):
            self._half_open.add(spi)
            if not sa.initiator:
                ip = sa.remote[0]
                self._half_open_src[spi] = ip
                self._per_source[ip] = self._per_source.get(ip, 0) + 1
        if not sa.initiator:
            key = (sa.spi_i, sa.remote[0], sa.remote[1])
            self.by_init[key] = sa
            self._init_key[spi] = key
        for c in sa.children.values():
            self._children[c.spi_in] = sa
        if self.on_add is not None:
            self.on_add(sa)

    def remove(self, sa: IkeSa) -> None:
        spi = sa.our_spi
        if self.by_spi.get(spi) is sa:
            del self.by_spi[spi]
        name = self._name_of.pop(spi, None)
        if name is not None and self._by_name.get(name) is sa:
            del self._by_name[name]
        self._settle(spi)
        key = self._init_key.pop(spi, None)
        if key is not None and self.by_init.get(key) is sa:
            del self.by_init[key]
        for c in sa.children.values():
            if self._children.get(c.spi_in) is sa:
                del self._children[c.spi_in]

    def set_spi_r(self, sa: IkeSa, spi_r: bytes) -> None:
        """The initiator learns the responder's SPI: the SA's name changes (its own SPI does not)."""
        spi = sa.our_spi
        old = self._name_of.get(spi)
        if old is not None and self._by_name.get(old) is sa:
            del self._by_name[old]
        sa.spi_r = spi_r
        if spi in self._name_of:
            name = self._name_of[spi] = sa.name
            self._by_name[name] = sa

    def move_peer(self, sa: IkeSa, remote: Address, local: Address) -> None:
        """The peer (or we) moved, e.g. a NAT port change (RFC 7296 2.23). The IKE_SA_INIT index keeps
        the address the request came from: that is where a retransmission of it comes from."""
        sa.remote, sa.local = remote, local

    def mark_established(self, sa: IkeSa) -> None:
        self._settle(sa.our_spi)

    def _settle(self, spi: bytes) -> None:
        self._half_open.discard(spi)
        ip = self._half_open_src.pop(spi, None)
        if ip is not None:
            left = self._per_source[ip] - 1
            if left:
                self._per_source[ip] = left
            else:
                del self._per_source[ip]

    # --- Child SAs ---------------------------------------------------------------------
    def add_child(self, sa: IkeSa, child: ChildSa) -> None:
        sa.children[child.spi_in] = child
        self._children[child.spi_in] = sa

    def remove_child(self, sa: IkeSa, child: ChildSa) -> bool:
        """False when `child` was not (or no longer) one of `sa`'s."""
        if sa.children.pop(child.spi_in, None) is None:
            return False
        if self._children.get(child.spi_in) is sa:
            del self._children[child.spi_in]
        return True

    def move_children(self, old: IkeSa, new: IkeSa) -> None:
        """The Child SAs of `old` now belong to `new` (an IKE SA rekey, RFC 7296 2.18)."""
        for spi, c in old.children.items():
            new.children[spi] = c
            self._children[spi] = new
        old.children.clear()

    # --- lookups -----------------------------------------------------------------------
    def get(self, our_spi: bytes) -> IkeSa | None:
        return self.by_spi.get(our_spi)

    def by_name(self, name: str) -> IkeSa | None:
        return self._by_name.get(name)

    def find_child(self, spi_in: int) -> tuple[IkeSa, ChildSa] | None:
        sa = self._children.get(spi_in)
        if sa is None:
            return None
        child = sa.children.get(spi_in)
        return (sa, child) if child is not None else None

    def half_open(self) -> int:
        return len(self._half_open)

    def half_open_from(self, ip: str) -> int:
        """Responder SAs from this peer address waiting for IKE_AUTH (the per-source limit)."""
        return self._per_source.get(ip, 0)

    def established(self) -> list[IkeSa]:
        return [sa for sa in self.by_spi.values() if sa.state == IkeState.ESTABLISHED]

    def sizes(self) -> dict[str, int]:
        """How many entries each index holds (all 0 for an empty table)."""
        return {"by_spi": len(self.by_spi), "by_init": len(self.by_init), "init_keys": len(self._init_key),
                "by_name": len(self._by_name), "names": len(self._name_of), "children": len(self._children),
                "half_open": len(self._half_open), "half_open_sources": len(self._per_source)}

    def __iter__(self) -> Iterator[IkeSa]:
        return iter(list(self.by_spi.values()))

    def __len__(self) -> int:
        return len(self.by_spi)
