"""The product's own copy of the Pub/Sub API stubs (identical to the emulator's; see scripts/generate_pubsub_stubs.py)."""
