"""The chaos campaign of issue 9: a generated customer base, the emulator's faults, kills,
overlapping runs and lost state, measured from the outside (CLI, emulator, warehouse)."""
