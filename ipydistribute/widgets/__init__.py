"""Live views of runs and clusters, and the static pictures they leave in saved notebooks."""
