"""Captions: reading subtitle files, linting them, and turning them into burned-in and sidecar captions."""
