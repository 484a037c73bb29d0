"""Test support shared by the unit and end-to-end tests: token builders, stub services and the
error-contract assertions. Imported by tests; fixtures stay in each suite's conftest.py."""
