"""
Mirroring: any daemon can be a read-only replica of an upstream index.

The pieces, from the wire inward:

 - L{client}: a treq client that reads bounded bodies, streams files to the
   file store while hashing them, and gives up on an upstream that stalls;
 - L{snapshot}: what one upstream project looks like (releases, files,
   roles), parsed from the JSON API or from simple pages;
 - L{upstream}: the two ways to follow an upstream: by its serials (XML-RPC
   C{changelog_since_serial} plus the JSON API, as Warehouse and every
   twistedindex offer) or by its simple pages alone (devpi, pypiserver);
 - L{replica}: bringing one local project to a snapshot, in one transaction,
   with its files placed as an upload's are;
 - L{service}: the periodic rounds, their concurrency, progress and faults.

A mirror that follows serials keeps them: its journal is a copy of its
upstream's, entered in order and only as far as every change before it has
been applied (the "mirror serial").  So a mirror of a mirror works, and a
PEP 381 signature made by the master verifies on every node of the ring.
"""
