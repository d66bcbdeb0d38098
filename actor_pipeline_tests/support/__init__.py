"""Helpers that tests in several folders use: plain modules, imported by name. Fixtures live in
``conftest.py`` files; ``s3`` is the one plugin module, registered by the root conftest."""
