"""Moved to albsent/runner/ (session.py, resources.py, ray_private.py). Only tests/conftest.py
still imports these three names from here; delete this file once it imports albsent.runner."""

from albsent.runner.ray_private import loopback_node_ip
from albsent.runner.session import LOOPBACK_ENV, environ

__all__ = ["LOOPBACK_ENV", "environ", "loopback_node_ip"]
