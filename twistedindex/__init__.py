"""
twistedindex: a Python package index that runs as one Twisted daemon.

Start it with C{twistd -n cheeseshop}; see README.md.
"""

__version__ = "0.1.0"
