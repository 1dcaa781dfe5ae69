"""Small pieces shared by the agent, the engine and the lab."""
