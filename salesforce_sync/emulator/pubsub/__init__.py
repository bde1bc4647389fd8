"""The Pub/Sub API gRPC server of the emulated org (package eventbus.v1, from our own pubsub_api.proto)."""
