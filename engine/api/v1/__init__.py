"""Generated from proto/api/v1 by scripts/generate_proto.py: do not edit."""
