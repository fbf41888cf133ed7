"""DVC stages: one module each, with `add_arguments(parser)`, `main(args, mapper)` and pure helpers."""
