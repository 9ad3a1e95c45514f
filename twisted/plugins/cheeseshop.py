"""
The C{cheeseshop} twistd plugin.  All logic lives in L{twistedindex.tap}; this
module stays tiny because Twisted imports every plugin module on discovery.
"""

from twisted.application.service import ServiceMaker

cheeseshop = ServiceMaker(
    "twistedindex cheeseshop",
    "twistedindex.tap",
    "A Python package index: uploads, simple API, JSON API, XML-RPC, mirroring.",
    "cheeseshop",
)
