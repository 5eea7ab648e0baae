"""The delivery pipeline: map rows, decide, send, record state."""
