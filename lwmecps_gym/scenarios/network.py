"""Network delay model: round-trip time from great-circle distance.

``rtt_ms = access_rtt_ms + per_hop_rtt_ms * hops + 2 * route_stretch * d_km * fibre_us_per_km / 1000``

Constants (defaults of :class:`NetworkModel`) and where they come from:

* ``access_rtt_ms = 10``: user-plane radio access round trip of an LTE cell. 3GPP TR 36.913
  (LTE-Advanced requirements) targets a user-plane one-way latency below 5 ms, i.e. about
  10 ms for a round trip. The EUA sites are 4G (Optus) base stations.
* ``fibre_us_per_km = 5.0``: propagation in optical fibre, c / n with group index n ~ 1.47,
  about 4.9 us/km one way (ITU-T G.652 fibre); rounded to 5.
* ``route_stretch = 2.0``: fibre routes are longer than the great circle; metro paths are
  commonly inflated by 1.5-3x (e.g. Singla et al., "The Internet at the Speed of Light",
  HotNets 2014, report a median ~2x path stretch for fibre routes). We use 2.
* ``per_hop_rtt_ms = 1.0`` and ``hops = 0`` for a request served at the user's own
  base-station site, else ``2 + round(d_km / hop_km)`` with ``hop_km = 1``: reaching another
  edge site crosses the metro aggregation (BS -> aggregation switch -> remote site), plus one
  router per km of metro ring. 1 ms per hop (forwarding + queueing, both directions) is a
  modelling assumption, not a measurement; change it with :class:`NetworkModel`.

In the Melbourne CBD (sites < 3 km apart) propagation adds < 0.1 ms; hops dominate, so a
request served at a remote edge site costs ~3-5 ms more than one served locally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Mean Earth radius (IUGG), km.
EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in km between points given in degrees (broadcasting numpy arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class NetworkModel:
    """Constants of the RTT model (see the module docstring for their sources)."""

    access_rtt_ms: float = 10.0
    per_hop_rtt_ms: float = 1.0
    hop_km: float = 1.0
    fibre_us_per_km: float = 5.0
    route_stretch: float = 2.0

    def rtt_ms(self, d_km: np.ndarray, colocated: np.ndarray) -> np.ndarray:
        """RTT in ms for distances ``d_km`` (km); ``colocated`` marks same-site pairs (0 hops)."""
        d_km = np.asarray(d_km, dtype=float)
        hops = np.where(colocated, 0.0, 2.0 + np.round(d_km / self.hop_km))
        prop = 2.0 * self.route_stretch * d_km * self.fibre_us_per_km / 1000.0
        return self.access_rtt_ms + self.per_hop_rtt_ms * hops + prop
