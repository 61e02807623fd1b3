"""fustor_agent."""
