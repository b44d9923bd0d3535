"""Generated from proto/api by scripts/generate_proto.py: do not edit."""
