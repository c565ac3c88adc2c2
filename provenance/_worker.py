"""Entry point of an isolated parsing worker: ``python -m provenance._worker FD ARENA_FD MAX_MEMORY HANDLERS``.

Started only by :mod:`provenance.isolation`, never by hand.
"""

from __future__ import annotations

import sys

from provenance.isolation import serve

if __name__ == "__main__":
    serve(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
