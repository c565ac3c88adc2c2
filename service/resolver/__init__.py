"""Soft-binding resolution: the C2PA Soft Binding Resolution API and the badge of a matching original."""
