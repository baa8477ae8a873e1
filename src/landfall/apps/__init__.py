"""Applications: run directories that compose other runs (the customer-service assistant)."""
