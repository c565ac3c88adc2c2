"""Rendering of public badges (SVG, HTML, JSON) from stored decisions and the fixed vocabulary."""
