"""Helpers shared by the test modules. Test modules import from here (or from
``tests/store_helpers.py``), never from one another."""
