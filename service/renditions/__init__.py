"""Signed renditions: resized copies of a stored asset, each stamped with the asset as its ``parentOf``
ingredient (:mod:`provenance.renditions`), made on first request and served from the blob store after."""
