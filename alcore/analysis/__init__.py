"""What the result files say: metrics, run groups, statistics across seeds, pitfalls, explanations."""
