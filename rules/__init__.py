"""Rule models, pure evaluators and the engine that turns readings into clues."""
