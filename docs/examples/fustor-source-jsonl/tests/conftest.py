"""Enable the SDK's testing kit (fixtures and contract classes) for this test suite."""

pytest_plugins = ["fustor_agent_sdk.testing"]
