"""DVC stages: one module each, with `add_arguments(parser)`, `main(args, mapper)`, pure helpers."""
