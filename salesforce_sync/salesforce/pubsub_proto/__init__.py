"""The product's own copy of the Pub/Sub API stubs, generated from the emulator's pubsub_api.proto by
scripts/generate_pubsub_stubs.py (identical to the emulator's, which the product may not import)."""
