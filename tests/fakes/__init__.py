"""Local stand-ins for outside services, used by the test suite (never the internet)."""
