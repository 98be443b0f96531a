"""Tasks: what a model predicts, how its labels are encoded, scored and formatted."""
