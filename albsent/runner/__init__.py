"""Running on Ray, in one place: `session.py` (join or start a cluster, loopback only when local),
`resources.py` (refuse a request no node can hold), `tasks.py` (map plain functions over Ray
tasks), `ray_private.py` (the private Ray APIs albsent needs, each tested against a real cluster).
The extraction graph (Ray Data) stays in albsent/pipeline/, Tune in albsent/sweep/."""
