"""A third-party source driver used only by the tests."""
