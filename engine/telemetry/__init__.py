"""Telemetry of the engine: traces, structured logs and metrics."""
