"""crelu-theory's verification suite: claims, data, experiments, report and CLI."""
