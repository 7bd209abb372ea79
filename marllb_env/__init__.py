"""marllb_env: MARLLB-style load balancing environments (single- and multi-agent)."""
