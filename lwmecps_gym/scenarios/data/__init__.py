"""Package data: the EUA Melbourne CBD CSVs (see README.md and LICENSE here)."""
