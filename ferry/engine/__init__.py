"""Engine (oVirt Engine's role): inventory, policies, planning, orchestration, REST API."""
