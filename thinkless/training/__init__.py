"""Training: the two stages (``sft`` distillation, ``rl``), the trainer that runs an objective, the loss shapes it
dispatches to, and training to a budget."""
