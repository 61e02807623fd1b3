"""Third-party drivers used only by the tests: proves entry-point discovery, drives the host."""
