"""Results, events and their renderers (rich for people, JSON for machines)."""
