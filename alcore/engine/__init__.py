"""The engine: models, training, the active-learning loop, races, the run store, the person as oracle."""
