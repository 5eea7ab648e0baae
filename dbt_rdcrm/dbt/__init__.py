"""The dbt side: project and profile loading, the manifest, selection, the warehouse adapter."""
