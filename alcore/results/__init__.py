"""Result records (one per round, one per run) and their versioned JSON files."""
