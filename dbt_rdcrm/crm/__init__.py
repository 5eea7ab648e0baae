"""The RD Station CRM v2 client: one HTTP seam, rate limiting, typed errors."""
