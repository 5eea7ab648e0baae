"""What users declare: field catalogue, typed sync specs, settings and their checks."""
