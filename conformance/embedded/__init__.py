"""The embedded reference cloud: real Nova, Placement, Keystone and Glance on loopback.

Start it with ``python -m conformance.embedded up`` (see :mod:`.cli`).  This
package is deliberately import-light: the heavy OpenStack imports happen only
inside the service processes and the orchestrator's ``up``.
"""
