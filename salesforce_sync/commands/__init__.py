"""What the CLI's commands do, apart from argument parsing."""
